"""The linear baseline: the DLinear decomposition, closed-form fits, and its place in every forecast report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.timeseries import SeriesConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.forecast_linear import LinearForecast, fit_linear, moving_average
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine (no threads spinning for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(**series) -> ForecastConfig:
    return ForecastConfig(
        series=SeriesConfig(**series),
        rnn=RNNConfig(cell="gru", hidden_size=8),
        trainer=TrainerConfig(epochs=1, progress=False, checkpoint_minutes=None),
    )


def test_moving_average_repeats_the_ends_and_keeps_the_length():
    z = torch.tensor([[1.0, 2.0, 3.0, 4.0, 10.0]])
    ma = moving_average(z, 3)
    assert ma.shape == z.shape
    torch.testing.assert_close(ma, torch.tensor([[4 / 3, 2.0, 3.0, 17 / 3, 8.0]]))
    torch.testing.assert_close(moving_average(z, 1), z)


def test_trend_plus_remainder_is_a_linear_map_of_the_history():
    model = LinearForecast(timestep=12, horizon=3)
    x = torch.randn(5, 12, 2)
    feats = model.features(x)  # (B, n, 2T): trend, then remainder, which add up to the history
    torch.testing.assert_close(feats[..., :12] + feats[..., 12:], x.transpose(1, 2))
    assert model(x).shape == (5, 3, 2)


def test_the_linear_baseline_recovers_an_exactly_linear_series(tmp_path):
    t = np.arange(200, dtype=float)
    df = pd.DataFrame({"y": 3.0 + 0.25 * t})
    _, metrics = Forecaster.train(small(target=["y"], timestep=16, horizon=4), df, tmp_path / "lin")
    assert metrics["linear"]["mae"] < 1e-4, metrics["linear"]
    assert metrics["linear"]["mae"] < 0.01 * metrics["seasonal_naive"]["mae"]
    # the model starts from the same fit (its recurrent correction at zero): one epoch cannot spoil it
    assert metrics["model"]["mae"] < 0.05 * metrics["seasonal_naive"]["mae"], metrics["model"]


def test_the_fit_falls_back_to_seasonal_naive_when_nothing_beats_it_on_validation():
    torch.manual_seed(0)
    season, T, H = 4, 8, 4
    pattern = torch.tensor([1.0, -2.0, 0.5, 0.5])
    x_tr = torch.randn(64, T, 1) * 3  # training windows that say nothing about the season
    y_tr = torch.randn(64, H, 1)
    x_val = pattern.repeat(2)[None, :, None].expand(4, T, 1).clone()
    y_val = pattern[None, :, None].expand(4, H, 1) - x_val[:, -1:, :]  # relative to the last value
    x_val = x_val - x_val[:, -1:, :]
    model = LinearForecast(T, H)
    fit = fit_linear(model, (x_tr, y_tr), (x_val, y_val), season)
    assert fit.base == "season" and fit.alpha == float("inf") and fit.val_mse == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(model(x_val), y_val)


def test_every_report_scores_the_linear_baseline_on_the_same_windows(tmp_path):
    t = np.arange(300)
    df = pd.DataFrame({"y": np.sin(2 * np.pi * t / 12) + 0.01 * t})
    task, metrics = Forecaster.train(small(target=["y"], timestep=24, horizon=6), df, tmp_path / "r")
    for key in ("model", "seasonal_naive", "linear"):
        assert {"mae", "rmse", "mse", "smape", "mase", "mse_scaled", "mae_scaled"} <= set(metrics[key]), key
    assert metrics["linear_part"]["base"] in ("last", "season")
    again = task.evaluate(df, "test")
    assert again["linear"]["mae"] == pytest.approx(metrics["linear"]["mae"], rel=1e-6)
