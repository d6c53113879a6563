"""Forecasting task: built-in CO2 and an ETTh1 slice; evaluate -> predict -> save -> load -> same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import rnnkit
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.demo import co2_monthly
from rnnkit.tasks.forecast import ForecastConfig, Forecaster, infer_season
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine (no threads spinning for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(**series) -> ForecastConfig:
    return ForecastConfig(
        series=SeriesConfig(**series),
        rnn=RNNConfig(cell="gru", hidden_size=16),
        trainer=TrainerConfig(epochs=3, lr=5e-3, progress=False),
    )


def test_builtin_co2_train_evaluate_predict_reload(tmp_path):
    cfg = config(target=["co2"], time_column="month", calendar=["month"], timestep=24, horizon=6, missing="interpolate")
    task, metrics = Forecaster.train(cfg, co2_monthly(), tmp_path / "run")
    assert metrics["part"] == "test" and metrics["season"] == 12
    assert {"mae", "rmse", "smape", "mase", "quantile_loss", "interval_coverage"} <= set(metrics["model"])
    assert {"mae", "mase"} <= set(metrics["seasonal_naive"])
    for name in ("model/config.json", "model/model.safetensors", "metrics.json", "loss.png", "forecast.png"):
        assert (tmp_path / "run" / name).is_file(), name
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert list(table.columns) == ["origin", "time", "step", "co2_actual", "co2", "co2_q0.1", "co2_q0.5", "co2_q0.9"]
    assert len(table) == metrics["windows"] * 6
    mae = (table["co2"] - table["co2_actual"]).abs().mean()
    assert mae == pytest.approx(metrics["model"]["mae"], rel=1e-5)
    forecast = task.predict(co2_monthly())
    assert list(forecast.columns) == ["month", "co2", "co2_q0.1", "co2_q0.5", "co2_q0.9"] and len(forecast) == 6
    assert forecast["month"].iloc[0] == pd.Timestamp("2002-01-01") and forecast["month"].iloc[-1] == pd.Timestamp(
        "2002-06-01"
    )
    assert (forecast["co2_q0.1"] <= forecast["co2_q0.9"]).all()
    again = rnnkit.load(tmp_path / "run")
    assert isinstance(again, Forecaster)
    pd.testing.assert_frame_equal(again.predict(co2_monthly()), forecast)
    evaluated = again.evaluate(co2_monthly(), "test")
    assert evaluated["model"]["mae"] == pytest.approx(metrics["model"]["mae"], rel=1e-6)


def test_etth1_slice_with_covariates(slices, tmp_path):
    cfg = config(
        target=["OT"],
        time_column="date",
        past_covariates=["HUFL", "HULL"],
        calendar=["hour"],
        timestep=48,
        horizon=24,
        train=0.6,
        val=0.2,
    )
    task, metrics = Forecaster.train(cfg, slices["etth1.csv"], tmp_path / "ett")
    assert metrics["season"] == 24 and metrics["model"]["mse_scaled"] > 0
    pred = task.predict(slices["etth1.csv"])
    assert len(pred) == 24 and pred["date"].iloc[0] == pd.Timestamp("2016-08-20 00:00:00")
    pd.testing.assert_frame_equal(rnnkit.load(tmp_path / "ett").predict(slices["etth1.csv"]), pred)


def test_known_future_covariates_come_from_rows_after_the_data(tmp_path):
    t = pd.date_range("2024-01-01", periods=120, freq="D")
    promo = (np.arange(120) % 7 == 0).astype(float)
    df = pd.DataFrame({"day": t, "sales": 10 + 5 * promo + np.sin(np.arange(120)), "promo": promo})
    cfg = config(
        target=["sales"], time_column="day", future_covariates=["promo"], timestep=14, horizon=3, train=0.7, val=0.15
    )
    task, _ = Forecaster.train(cfg, df, tmp_path / "run")
    with pytest.raises(ValueError, match=r"add 3 rows after the last target value with those columns filled"):
        task.predict(df)
    future = pd.DataFrame(
        {"day": pd.date_range("2024-04-30", periods=3, freq="D"), "sales": np.nan, "promo": [1.0, 0.0, 0.0]}
    )
    pred = task.predict(pd.concat([df, future], ignore_index=True))
    assert len(pred) == 3 and pred["day"].iloc[0] == pd.Timestamp("2024-04-30")


def test_seasonal_naive_is_perfect_on_a_purely_seasonal_series(tmp_path):
    df = pd.DataFrame({"y": np.tile([1.0, 5.0, 2.0, 8.0], 40)})
    task, metrics = Forecaster.train(config(target=["y"], timestep=8, horizon=4), df, tmp_path / "s")
    assert metrics["seasonal_naive"]["mae"] == 0.0 or metrics["season"] == 1
    task.season = 4
    assert task.evaluate(df, "test")["seasonal_naive"]["mae"] == pytest.approx(0.0, abs=1e-9)


def test_season_inference():
    assert infer_season(pd.Series(pd.date_range("2020-01-01", periods=50, freq="h"))) == 24
    assert infer_season(pd.Series(pd.date_range("2020-01-01", periods=50, freq="MS"))) == 12
    assert infer_season(pd.Series(pd.date_range("2020-01-01", periods=50, freq="D"))) == 7
    assert infer_season(None) == 1


def test_loading_the_wrong_task_is_refused(tmp_path):
    df = pd.DataFrame({"y": np.sin(np.arange(100) / 3)})
    Forecaster.train(config(target=["y"], timestep=8, horizon=2), df, tmp_path / "f")
    from rnnkit.tasks import Classifier

    with pytest.raises(ValueError, match="holds a 'forecast' model, not a 'classify' one"):
        Classifier.load(tmp_path / "f")
    with pytest.raises(ValueError, match="already holds a run"):
        Forecaster.train(config(target=["y"], timestep=8, horizon=2), df, tmp_path / "f")
