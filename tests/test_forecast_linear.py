"""The linear baseline: the DLinear decomposition, closed-form fits, and its place in every forecast report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.data.timeseries import SeriesConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.forecast_linear import MIN_BLOCKS, LinearFit, LinearForecast, fit_linear, moving_average
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


def _ar_windows(n: int, T: int, H: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative windows of a noisy AR(2) with a daily-like cycle: ``(x (n, T, 1), y (n, H, 1))``."""
    g = torch.Generator().manual_seed(seed)
    z = torch.zeros(n + T + H)
    e = torch.randn(n + T + H, generator=g)
    for t in range(2, len(z)):
        z[t] = 1.2 * z[t - 1] - 0.5 * z[t - 2] + 0.3 * math.sin(2 * math.pi * t / 6) + e[t]
    x = torch.stack([z[i : i + T] for i in range(n)])[..., None]
    y = torch.stack([z[i + T : i + T + H] for i in range(n)])[..., None]
    return x - x[:, -1:], y - x[:, -1:]


def test_the_stored_map_gives_the_chosen_forecast_and_more_candidates_never_score_worse():
    T, H = 24, 4
    train, val = _ar_windows(60, T, H, seed=3), _ar_windows(200, T, H, seed=4)

    def fitted(**options) -> tuple[LinearFit, float]:
        model = LinearForecast(T, H)
        fit = fit_linear(model, train, val, season=6, **options)
        with torch.no_grad():
            return fit, float(((model(val[0]) - val[1]) ** 2).mean())

    plain, plain_mse = fitted(trend_penalties=(1.0,), fractions=())
    blocks, _ = fitted(fractions=())
    full, full_mse = fitted()
    # the model's forecast is the one scored on validation, also when it averages shorter lookbacks' fits
    assert len(full.lookbacks) > 1 and blocks.trend_penalty > 1, (full, blocks)
    assert full_mse == pytest.approx(full.val_mse, rel=1e-4)
    assert plain_mse == pytest.approx(plain.val_mse, rel=1e-4)
    # each mechanism adds candidates chosen on validation: never worse there, and here strictly better
    assert full.val_mse < blocks.val_mse <= plain.val_mse


def test_a_small_val_part_keeps_the_plain_fit():
    T, H = 24, 4
    train, val = _ar_windows(60, T, H, seed=3), _ar_windows(200, T, H, seed=4)
    few = (val[0][: MIN_BLOCKS * H - 1], val[1][: MIN_BLOCKS * H - 1])  # one window short of enough to tell
    plain = fit_linear(LinearForecast(T, H), train, few, season=6, trend_penalties=(1.0,), fractions=())
    fit = fit_linear(LinearForecast(T, H), train, few, season=6)
    assert fit == plain and fit.lookbacks == (T,) and fit.trend_penalty == 1.0
