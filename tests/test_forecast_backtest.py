"""Backtests: rolling origins over the test part that never see data after the origin; CLI files and errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rnnkit.cli import app
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.forecast_backtest import origins
from rnnkit.tasks.forecast_report import linear_baseline, linear_predictions, target_affine, unscale
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine (no threads spinning for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def series(n: int = 240) -> pd.DataFrame:
    t = np.arange(n)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "day": pd.date_range("2022-01-01", periods=n, freq="D"),
            "y": 50 + 5 * np.sin(2 * np.pi * t / 7) + 0.05 * t + rng.normal(0, 0.3, n),
            "load": rng.normal(0, 1, n),
            "promo": (t % 10 == 0).astype(float),
        }
    )


def config(**kw) -> ForecastConfig:
    s = {"target": ["y"], "time_column": "day", "past_covariates": ["load"], "future_covariates": ["promo"]}
    return ForecastConfig(
        series=SeriesConfig(**(s | {"timestep": 14, "horizon": 5} | kw)),
        rnn=RNNConfig(cell="gru", hidden_size=8),
        linear="none",  # the recurrent part alone: every input, the future covariate too, moves the forecast
        trainer=TrainerConfig(epochs=1, progress=False, checkpoint_minutes=None),
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("bt") / "run"
    task, _ = Forecaster.train(config(), series(), out)
    return task, out


def test_origins_spread_over_the_test_part_and_too_many_is_an_error():
    assert origins((100, 120), 5, 4).tolist() == [100, 105, 110, 115]
    assert origins((100, 120), 5, 16).tolist() == list(range(100, 116))
    with pytest.raises(ValueError, match=r"backtest=17 is larger than the test part allows: 20 rows with horizon 5 "):
        origins((100, 120), 5, 17)


def test_backtest_forecasts_never_see_data_after_their_origin(trained):
    task, _ = trained
    df = series()
    table = task.backtest(df, 4)
    assert list(table.columns) == [
        "series", "origin", "time", "step", "target", "actual", "forecast", "lower", "upper", "seasonal_naive",
        "linear",
    ]  # fmt: skip
    assert table["origin"].nunique() == 4 and len(table) == 4 * 5
    assert (table["time"] > table["origin"]).all() and (table["lower"] <= table["upper"]).all()
    first = table["origin"].min()
    # perturb everything after the first origin except the known-future covariate: its forecast must not move
    perturbed = df.copy()
    after = perturbed["day"] > first
    perturbed.loc[after, "y"] *= 3.0
    perturbed.loc[after, "load"] += 10.0
    again = task.backtest(perturbed, 4)
    mine = again["origin"] == first
    np.testing.assert_allclose(again.loc[mine, "forecast"], table.loc[table["origin"] == first, "forecast"])
    np.testing.assert_allclose(again.loc[mine, "linear"], table.loc[table["origin"] == first, "linear"])
    # ... while the later origins, which read the perturbed rows, do move (the test can fail)
    later = again["origin"] > first
    assert not np.allclose(again.loc[later, "forecast"], table.loc[table["origin"] > first, "forecast"])
    # the known-future covariate after the origin is read: changing it changes the forecast
    promo = df.copy()
    promo.loc[after, "promo"] = 1.0 - promo.loc[after, "promo"]
    moved = task.backtest(promo, 4)
    assert not np.allclose(moved.loc[moved["origin"] == first, "forecast"], table.loc[mine.values, "forecast"])


def test_the_fixed_model_backtest_equals_the_window_predictions(trained):
    task, _ = trained
    df = series()
    table = task.backtest(df, 1)
    windows = task.window_predictions(task.prepare(df), "test")
    first = windows[windows["origin"] == windows["origin"].min()]
    np.testing.assert_allclose(table["forecast"].to_numpy(), first["y"].to_numpy(), rtol=1e-5)
    # the linear baseline beside it is the one every report scores: fitted on the same training windows
    prepared = task.prepare(df)
    x = prepared.windows("test").tensors()[0][:1]
    shift, scale = target_affine(task, prepared)
    expected = unscale(linear_predictions(task, linear_baseline(task, prepared), x), shift, scale)
    np.testing.assert_allclose(table["linear"].to_numpy(), expected[0, :, 0], rtol=1e-5)


def test_retrain_refits_at_each_origin_on_the_rows_before_it_only(trained):
    task, _ = trained
    df = series()
    fixed = task.backtest(df, 2)
    refit = task.backtest(df, 2, retrain=True)
    assert refit["origin"].tolist() == fixed["origin"].tolist()
    assert not np.allclose(refit["forecast"], fixed["forecast"])
    # the model refitted for the first origin never saw a row after it: perturbing them leaves its forecast
    first = refit["origin"].min()
    perturbed = df.copy()
    perturbed.loc[perturbed["day"] > first, ["y", "load"]] *= 3.0
    again = task.backtest(perturbed, 2, retrain=True)
    mine = (again["origin"] == first).to_numpy()
    np.testing.assert_allclose(again.loc[mine, "forecast"], refit.loc[mine, "forecast"], rtol=1e-6)
    assert not np.allclose(again.loc[~mine, "forecast"], refit.loc[~mine, "forecast"]), "the second origin's did"


def test_cli_backtest_writes_table_and_plot_and_keeps_earlier_files(trained, tmp_path):
    _, run = trained
    data = tmp_path / "s.csv"
    series().to_csv(data, index=False)
    args = ["evaluate", str(run), "--data", str(data)]
    result = runner.invoke(app, [*args, "--backtest", "3", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())["backtest"]
    assert metrics["origins"] == 3 and {"mae", "rmse", "smape", "interval_coverage"} <= set(metrics["model"])
    assert {"mae", "rmse", "smape"} <= set(metrics["seasonal_naive"]) & set(metrics["linear"])
    table = pd.read_csv(run / "backtest.csv")
    assert table["origin"].nunique() == 3 and (run / "backtest.png").stat().st_size > 10_000
    before = (run / "backtest.csv").read_bytes()
    result = runner.invoke(app, [*args, "--backtest", "2"])
    assert result.exit_code == 1 and "backtest.csv exists; pass --overwrite" in result.output
    # 20% of 240 rows = 48 test rows; horizon 5 -> at most 44 origins
    result = runner.invoke(app, [*args, "--backtest", "45", "--overwrite"])
    assert result.exit_code == 1 and "--backtest 45 is larger than the test part allows: 48 rows" in result.output
    assert "use --backtest 44 or a larger --test part" in result.output and "Traceback" not in result.output
    assert (run / "backtest.csv").read_bytes() == before, "a failing command loses nothing already written"
    result = runner.invoke(app, [*args, "--backtest", "0", "--overwrite"])
    assert result.exit_code == 1 and "--backtest 0: give the number of origins, 1 or more" in result.stderr
    result = runner.invoke(app, [*args, "--retrain"])
    assert result.exit_code == 1 and "--retrain refits the model at each backtest origin; give --backtest K" in (
        result.stderr
    )
    assert (run / "backtest.csv").read_bytes() == before
