"""Many series in one table (long format): one global model, per-series scaling, statics, per-series reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import rnnkit
from rnnkit.cli import app
from rnnkit.data.timeseries import SeriesConfig, prepare_series
from rnnkit.errors import cli_style
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine (no threads spinning for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def panel(seed: int = 0) -> pd.DataFrame:
    """Three daily series with a weekly season: different scales, phases, trends, lengths and start dates."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, n, start, level, amp, phase, trend, size in (
        ("a", 260, "2021-01-01", 10.0, 2.0, 0.0, 0.02, "small"),
        ("b", 300, "2020-11-20", 1000.0, 150.0, 2.0, -0.5, "large"),
        ("c", 220, "2021-02-10", -50.0, 8.0, 4.0, 0.1, "small"),
    ):
        t = np.arange(n)
        y = level + amp * np.sin(2 * np.pi * t / 7 + phase) + trend * t + rng.normal(0, 0.1 * amp, n)
        parts.append(
            pd.DataFrame({"store": name, "day": pd.date_range(start, periods=n, freq="D"), "sales": y, "size": size})
        )
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # rows in any order


def config(**series) -> ForecastConfig:
    base = {"target": ["sales"], "time_column": "day", "series_id": "store", "horizon": 7}
    return ForecastConfig(
        series=SeriesConfig(**(base | series)),
        rnn=RNNConfig(cell="gru", hidden_size=16),
        trainer=TrainerConfig(epochs=None, max_steps=150, min_steps=50, early_stopping=5, progress=False),
    )


def test_a_global_model_beats_seasonal_naive_on_every_series(tmp_path):
    task, metrics = Forecaster.train(config(static=["size"]), panel(), tmp_path / "run")
    assert set(metrics["series"]) == {"a", "b", "c"}
    for name, m in metrics["series"].items():
        assert m["model"]["mae"] < m["seasonal_naive"]["mae"], (name, m["model"]["mae"], m["seasonal_naive"]["mae"])
    assert metrics["windows"] == sum(m["windows"] for m in metrics["series"].values())
    assert task.columns["future"] == ["size=large", "size=small"], "a categorical static covariate is one-hot"
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert table.columns[0] == "store" and set(table["store"]) == {"a", "b", "c"}
    forecast = rnnkit.load(tmp_path / "run").predict(panel())
    assert list(forecast.columns[:3]) == ["store", "day", "sales"] and len(forecast) == 3 * 7
    last_b = panel().query("store == 'b'")["day"].max()
    assert forecast.query("store == 'b'")["day"].iloc[0] == last_b + pd.Timedelta(days=1)
    assert forecast.query("store == 'b'")["sales"].mean() > 500, "each series forecast in its own units"


def test_scalers_are_per_series_and_fitted_on_each_train_part_only():
    df = panel()
    cfg = SeriesConfig(target=["sales"], time_column="day", series_id="store", timestep=14, horizon=7)
    before = prepare_series(df, cfg)
    assert before.ids == ["a", "b", "c"] and len(before.scalers) == 3
    b = df["store"] == "b"
    rows_b = df[b].sort_values("day")
    test_b = before.part_range(1, "test")[0] - before.rows(1).start  # b's first test row
    changed = df.copy()
    changed.loc[rows_b.index[test_b:], "sales"] = 1e6  # b's test part only
    after = prepare_series(changed, cfg)
    assert [s.to_json() for s in after.scalers] == [s.to_json() for s in before.scalers]
    a = before.rows(0)
    np.testing.assert_array_equal(after.values[a], before.values[a])
    c = before.rows(2)
    np.testing.assert_array_equal(after.values[c], before.values[c])
    # b's own scaler: mean and std of its training rows alone
    train_b = rows_b["sales"].to_numpy()[: before.part_range(1, "train")[1] - before.rows(1).start]
    assert before.scalers[1].shift[0] == pytest.approx(train_b.mean())
    assert before.scalers[1].scale[0] == pytest.approx(train_b.std())


def test_a_series_too_short_for_one_window_is_skipped_and_named(tmp_path):
    df = pd.concat(
        [panel(), pd.DataFrame({"store": "tiny", "day": pd.date_range("2021-03-01", periods=12), "sales": 1.0})]
    )
    cfg = SeriesConfig(target=["sales"], time_column="day", series_id="store", timestep=14, horizon=7)
    prepared = prepare_series(df, cfg)
    assert prepared.ids == ["a", "b", "c"] and "tiny" in prepared.skipped
    assert "fewer than timestep + horizon = 21" in prepared.skipped["tiny"]
    cfg = config(timestep=14)
    cfg.trainer.max_steps = 5
    _, metrics = Forecaster.train(cfg, df, tmp_path / "r")
    assert "tiny" in metrics["skipped_series"] and "tiny" not in metrics["series"]


def test_wide_format_with_several_targets_still_works(tmp_path):
    t = np.arange(240)
    df = pd.DataFrame(
        {"t": pd.date_range("2022-01-01", periods=240, freq="h"), "u": np.sin(t / 4), "v": 100 + 10 * np.cos(t / 5)}
    )
    cfg = config(target=["u", "v"], time_column="t", series_id=None, timestep=24, horizon=6)
    cfg.trainer.max_steps = 20
    task, metrics = Forecaster.train(cfg, df, tmp_path / "wide")
    assert "series" not in metrics and metrics["model"]["mae"] > 0
    assert list(task.predict(df).columns) == ["t", "u", "v", "u_q0.1", "u_q0.5", "u_q0.9", "v_q0.1", "v_q0.5", "v_q0.9"]


def _bad(df: pd.DataFrame, **kwargs) -> str:
    cfg = SeriesConfig(**({"target": ["sales"], "time_column": "day", "series_id": "store", "horizon": 7} | kwargs))
    with cli_style(), pytest.raises(ValueError) as info:
        prepare_series(df, cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_long_tables_are_one_line_errors_naming_column_series_and_fix():
    df = panel()
    missing = df.copy()
    missing.loc[missing.index[5], "store"] = None
    msg = _bad(missing)
    assert "series-id column 'store' (--series-id) is empty in 1 row(s) (first: row 5, counting from 0)" in msg, msg
    assert "give every row its series id" in msg  # row 5 of the table as given, not of the table sorted by time
    dup = pd.concat([df, df[df["store"] == "c"].head(2)])
    msg = _bad(dup)
    assert "series 'c' has 2 duplicated (store, day) pair(s)" in msg and "keep one row per series" in msg
    irregular = df[(df["store"] != "a") | (np.random.default_rng(1).random(len(df)) < 0.5)]
    msg = _bad(irregular)
    assert "series 'a' in column 'day' has an irregular frequency" in msg and "resample it" in msg
    varying = df.copy()
    varying.loc[varying["store"] == "b", "size"] = ["large", "huge"] * 150
    msg = _bad(varying, static=["size"])
    assert "static covariate 'size' varies within series 'b'" in msg and "--past" in msg
    assert "(check --series-id)" in _bad(df.drop(columns="store").assign(x=1), series_id="shop")


def with_tiny(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` plus a store with 12 days: too short for one window of any part."""
    tiny = pd.DataFrame(
        {"store": "tiny", "day": pd.date_range("2021-03-01", periods=12), "sales": 1.0, "size": "small"}
    )
    return pd.concat([df, tiny], ignore_index=True)


def small_config(**series) -> ForecastConfig:
    cfg = config(**({"timestep": 14, "static": ["size"]} | series))
    cfg.trainer = TrainerConfig(epochs=None, max_steps=5, min_steps=0, progress=False, checkpoint_minutes=None)
    return cfg


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A global model after a few steps (what these tests check does not depend on how well it learned)."""
    out = tmp_path_factory.mktemp("many") / "run"
    task, metrics = Forecaster.train(small_config(), panel(), out)
    return task, metrics, out


def test_a_too_short_series_is_skipped_with_the_default_lookback_too():
    cfg = SeriesConfig(target=["sales"], time_column="day", series_id="store", horizon=7)  # lookback: the default
    prepared = prepare_series(with_tiny(panel()), cfg)
    assert prepared.ids == ["a", "b", "c"] and prepared.cfg.timestep == 21, "three weeks: the others decide"
    assert (
        "series 'tiny'" in prepared.skipped["tiny"]
        and "has 12 rows, fewer than timestep + horizon = 28" in prepared.skipped["tiny"]
    )


def test_another_series_test_rows_change_nothing_in_training(small_run, tmp_path):
    task, metrics, _ = small_run
    df = panel()
    b = df[df["store"] == "b"].sort_values("day")
    changed = df.copy()
    changed.loc[b.index[-60:], "sales"] = 1e6  # b's test part (60 of its 300 rows) and nothing else
    again, moved = Forecaster.train(small_config(), changed, tmp_path / "changed")
    for key, value in task.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert moved["series"]["a"] == metrics["series"]["a"] and moved["series"]["c"] == metrics["series"]["c"]
    assert moved["series"]["b"]["model"]["mae"] > 1000 * metrics["series"]["b"]["model"]["mae"], "b's test changed"


def test_predict_skips_a_series_too_short_and_names_it(small_run, tmp_path):
    task, _, run = small_run
    with pytest.warns(UserWarning, match=r"series 'tiny' \(the model's lookback, timestep\), got 12"):
        table = task.predict(with_tiny(panel()))
    assert set(table["store"]) == {"a", "b", "c"} and len(table) == 3 * 7 and "tiny" in table.attrs["skipped_series"]
    with_tiny(panel()).to_csv(tmp_path / "t.csv", index=False)
    result = CliRunner().invoke(app, ["predict", str(run), "--data", str(tmp_path / "t.csv")])
    assert result.exit_code == 0, result.output
    assert "warning: skipped: predict needs at least 14 rows of history of series 'tiny'" in result.stderr
    assert "--timestep" in result.stderr and "tiny" not in result.stdout and len(result.stdout.splitlines()) == 22
    with pytest.raises(ValueError, match="no series has enough history to forecast"):
        task.predict(panel().sort_values("day").groupby("store").head(10))


def test_a_backtest_over_many_series_skips_the_short_one_and_its_error_suggests_what_fits_every_series(small_run):
    from rnnkit.tasks.forecast_backtest import summary

    task, _, _ = small_run
    table = task.backtest(with_tiny(panel()), 2)
    assert isinstance(table, pd.DataFrame) and set(table["series"]) == {"a", "b", "c"}
    assert table.groupby("series")["origin"].nunique().tolist() == [2, 2, 2]
    assert "series 'tiny'" in table.attrs["skipped_series"]["tiny"]
    result = summary(table)
    assert result["origins"] == 2 and set(result["series"]) == {"a", "b", "c"} and "tiny" in result["skipped_series"]
    # test parts: a 52, b 60, c 44 rows; horizon 7: c allows the fewest origins, 38
    with cli_style(), pytest.raises(ValueError) as info:
        task.backtest(panel(), 39)
    message = str(info.value)
    assert "--backtest 39 is larger than the test part of series 'c' allows: 44 rows" in message, message
    assert "use --backtest 38 or a larger --test part" in message
    assert task.backtest(panel(), 38).groupby("series")["origin"].nunique().tolist() == [38, 38, 38]


def test_bad_long_tables_under_the_cli_are_one_line_and_keep_the_run(small_run, tmp_path):
    _, _, run = small_run
    kept = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}
    df = panel().sort_values(["store", "day"], ignore_index=True)
    missing = df.copy()
    missing.loc[5, "store"] = None
    varying = df.copy()
    varying.loc[varying["store"] == "b", "size"] = ["large", "huge"] * 150
    bad = {
        "missing": (missing, "series-id column 'store' (--series-id) is empty in 1 row(s) (first: row 5, ", "give"),
        "dup": (pd.concat([df, df[df["store"] == "c"].head(2)]), "series 'c' has 2 duplicated (store, day)", "keep"),
        "irregular": (
            df.drop(index=range(1, 200, 2)),
            "series 'a' in column 'day' has an irregular frequency: only 63% of its time steps are 2 days (others "
            "are 1 day, ...)",
            "resample it to one frequency",
        ),
        "varying": (
            varying,
            "static covariate 'size' varies within series 'b'",
            "pass time-varying columns with --past",
        ),
    }
    train = ["train", "forecast", "--target", "sales", "--time-column", "day", "--series-id", "store"]
    for name, (table, what, fix) in bad.items():
        path = tmp_path / f"{name}.csv"
        table.to_csv(path, index=False)
        for args in (
            [*train, "--static", "size", "--data", str(path), "--out", str(run), "--overwrite"],
            ["evaluate", str(run), "--data", str(path), "--backtest", "2", "--overwrite"],
            ["predict", str(run), "--data", str(path)],
        ):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 1, (name, args[0], result.output)
            line = result.stderr.strip()
            assert "\n" not in line and "Traceback" not in line and what in line and fix in line, (name, line)
            if name == "missing" and args[0] == "predict":
                assert f"line 7 of {path}" in line, line  # the file as read: its line (header on line 1)
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"} == kept


def test_a_numeric_static_covariate_is_standardised_over_the_series(tmp_path):
    df = panel().assign(area=lambda d: d["store"].map({"a": 1.0, "b": 2.0, "c": 6.0}))
    cfg = SeriesConfig(target=["sales"], time_column="day", series_id="store", timestep=14, horizon=7)
    cfg.static = ["area", "size"]
    prepared = prepare_series(df, cfg)
    assert prepared.future_columns == ["area", "size=large", "size=small"]
    j = prepared.input_columns.index("area")
    for i, raw in enumerate((1.0, 2.0, 6.0)):  # mean 3, population std sqrt(14/3)
        np.testing.assert_allclose(prepared.values[prepared.rows(i), j], (raw - 3.0) / np.sqrt(14 / 3))
    Forecaster.train(small_config(static=["area", "size"]), df, tmp_path / "run")
    forecast = rnnkit.load(tmp_path / "run").predict(df)
    assert set(forecast["store"]) == {"a", "b", "c"} and len(forecast) == 3 * 7
