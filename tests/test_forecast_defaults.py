"""Defaults that adapt to the series: a short monthly series trains with no sizes given and beats seasonal naive;
quantiles never cross; every option's default is in --help; a split error's suggested fix fits."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rnnkit.cli import app
from rnnkit.data.splits import auto_timestep
from rnnkit.data.timeseries import SeriesConfig, prepare_series
from rnnkit.errors import cli_style
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.forecast_model import ForecastNet, monotone
from rnnkit.topologies.base import RNNConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is as fast, and far faster on a busy machine (no threads spinning for a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def months(n: int = 108, seed: int = 3) -> pd.DataFrame:
    """Trend plus yearly seasonality, as a new user's series: nothing here was tuned on it."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 200 + 1.5 * t + 25 * np.sin(2 * np.pi * t / 12 + 0.7) + rng.normal(0, 4, n)
    return pd.DataFrame({"month": pd.date_range("2015-01-01", periods=n, freq="MS"), "sales": y})


def test_a_short_series_trains_with_the_defaults_and_beats_seasonal_naive(tmp_path):
    cfg = ForecastConfig(series=SeriesConfig(target=["sales"], time_column="month", horizon=12))
    cfg.rnn = RNNConfig(cell="lstm", hidden_size=16)  # smaller than the default, for the test's time
    cfg.trainer.progress = False
    task, metrics = Forecaster.train(cfg, months(), tmp_path / "run")
    s = task.cfg.series
    assert s.timestep == 24, "two years of lookback: three do not leave enough training windows"
    assert task.cfg.batch_size < 64 and metrics["training"]["steps"] >= cfg.trainer.min_steps
    assert metrics["part"] == "test" and metrics["windows"] >= 1
    assert metrics["model"]["mae"] < metrics["seasonal_naive"]["mae"], metrics
    # a handful of val windows cannot tell whether the recurrent correction helps: the point forecast takes half
    assert metrics["training"]["point_gate"] == 0.5 and "half the recurrent correction" in metrics["training"]["kept"]
    table = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert (table["sales_q0.1"] <= table["sales_q0.5"]).all() and (table["sales_q0.5"] <= table["sales_q0.9"]).all()
    with cli_style(), pytest.raises(ValueError, match=r"needs at least 24 rows of history \(the model's lookback, "):
        task.predict(months().iloc[:10])


def test_quantiles_are_ordered_by_construction():
    raw = torch.randn(64, 5, 2, 5) * 10
    out = monotone(raw, 2)
    assert (out.diff(dim=-1) >= 0).all() and torch.equal(out[..., 2], raw[..., 2])
    cfg = ForecastConfig(series=SeriesConfig(target=["y"], timestep=12, horizon=4), quantiles=(0.05, 0.5, 0.95))
    net = ForecastNet(cfg, n_inputs=1, n_future=0)
    for p in net.parameters():  # any weights at all, not just the zero-initialised start
        torch.nn.init.normal_(p, std=3.0)
    pred = net(torch.randn(32, 12, 1) * 5, torch.zeros(32, 4, 0))
    assert (pred.diff(dim=-1) >= 0).all()


def test_the_default_lookback_adapts_to_the_series():
    assert auto_timestep(train_rows=500, horizon=12, season=12) == 36
    assert auto_timestep(train_rows=74, horizon=12, season=12) == 24
    assert auto_timestep(train_rows=40, horizon=12, season=12) == 12
    assert auto_timestep(train_rows=20, horizon=4, season=12) == 8, "no season fits: what fits"
    assert auto_timestep(train_rows=2555, horizon=7, season=365) == 365, "a long season: one, not three"
    assert auto_timestep(train_rows=9000, horizon=24, season=1) == 48


def test_the_fix_a_split_error_suggests_fits():
    short = SeriesConfig(target=["sales"], time_column="month", timestep=66, horizon=12)
    with cli_style(), pytest.raises(ValueError, match=r"train part \(74 rows\) is too short") as info:
        prepare_series(months(), short)
    suggested = int(re.search(r"--timestep (\d+) or less", str(info.value)).group(1))
    fits = SeriesConfig(target=["sales"], time_column="month", timestep=suggested, horizon=12)
    fixed = prepare_series(months(), fits)
    assert all(len(fixed.windows(part)) >= 1 for part in ("train", "val", "test"))


def test_help_shows_every_default():
    import typer

    command = typer.main.get_command(app).commands["train"].commands["forecast"]  # what --help renders
    options = {p.opts[0]: " ".join((p.help or "").split()) for p in command.params if p.opts[0].startswith("--")}
    for flag, default in (
        ("--timestep", "[default: 3, 2 or 1 seasons"),
        ("--horizon", "[default: 1]"),
        ("--train", "[default: what val and test leave]"),
        ("--val", "[default: 10% of the rows"),
        ("--test", "[default: 20% of the rows"),
        ("--quantiles", "[default: 0.1,0.5,0.9]"),
        ("--linear", "[default: frozen]"),
        ("--patch", "[default: 1]"),
        ("--season", "[default: inferred from the time column"),
        ("--batch-size", "[default: 64, fewer for small data"),
        ("--missing", "[default: error]"),
        ("--time-budget", "[default: none]"),
    ):
        assert default in options[flag].replace("\\[", "["), (flag, options[flag])
    switches = {"--overwrite", "--resume", "--quiet", "--help"}  # off unless given
    required = {p.opts[0] for p in command.params if p.required}
    for flag, text in options.items():
        if flag not in switches | required:
            assert "[default: " in text.replace("\\[", "["), (flag, text)
    assert "[default: none: the table is one series]" in options["--series-id"].replace("\\[", "[")
    assert "--timestep" in CliRunner().invoke(app, ["train", "forecast", "--help"]).output


@pytest.mark.parametrize("season", [0, -1])
def test_a_season_below_one_is_refused_before_training(season, tmp_path):
    with pytest.raises(ValueError, match=rf"season must be >= 1 \(1: no seasonality\), got {season}"):
        ForecastConfig(series=SeriesConfig(target=["sales"]), season=season)
    months().to_csv(tmp_path / "x.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "train",
            "forecast",
            "--data",
            str(tmp_path / "x.csv"),
            "--target",
            "sales",
            "--season",
            str(season),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code != 0 and "--season must be >= 1" in result.stderr, result.stderr
