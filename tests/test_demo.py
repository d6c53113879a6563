"""The memory demo runs end to end on a small configuration and reports every cell."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from rich.console import Console

from rnnkit.data.synthetic import ADDING_BASELINE_MSE
from rnnkit.demo import MemoryDemoConfig, run_memory_demo


def test_memory_demo_small_run_reports_each_cell(tmp_path):
    cfg = MemoryDemoConfig(
        timestep=20, hidden_size=16, cells=("rnn_tanh", "gru"), steps=300, eval_every=50, out=tmp_path
    )
    out = io.StringIO()
    results = run_memory_demo(cfg, Console(file=out, width=120))
    assert [r.cell for r in results] == ["rnn_tanh", "gru"]
    assert results[0].steps == 300, "every cell gets the same budget; the vanilla RNN does not solve T=20 early"
    rnn, gru = results
    assert gru.val_mse < 0.5 * ADDING_BASELINE_MSE, "a GRU at T=20 learns the adding problem within 300 steps"
    text = out.getvalue()
    assert "baseline 0.167" in text and "rnn_tanh" in text and "remembered?" in text
    # then each cell's memory horizon: the GRU that learned reaches further back than the vanilla RNN
    assert "Memory horizon" in text and (tmp_path / "memory_horizon.png").stat().st_size > 10_000
    assert gru.horizon.horizon > rnn.horizon.horizon, (gru.horizon.horizon, rnn.horizon.horizon)
    assert f"{rnn.horizon.horizon}" in text.split("Memory horizon")[1]
    saved = json.loads((tmp_path / "memory_horizon.json").read_text())  # what the README may quote
    assert saved["timestep"] == 20 and saved["cells"]["gru"]["horizon"] == gru.horizon.horizon
    assert max(saved["cells"]["rnn_tanh"]["curve_relative"]) == 1.0 and not saved["cells"]["rnn_tanh"]["solved"]


def test_forecast_demo_beats_seasonal_naive_and_reloads(tmp_path, monkeypatch):
    from rnnkit.demo import run_forecast_demo
    from rnnkit.tasks.forecast import Forecaster

    out = io.StringIO()
    metrics = run_forecast_demo(tmp_path / "demo", console=Console(file=out, width=120))
    assert metrics["model"]["mae"] < metrics["seasonal_naive"]["mae"], metrics
    for name in ("co2_monthly.csv", "forecast.png", "loss.png", "forecast_next_year.csv", "model/config.json"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "seasonal naive" in out.getvalue() and "reloaded" in out.getvalue()
    assert metrics["training"]["steps"] > 20

    # re-running replaces its own run; a short second training (20 updates: what it learns is checked above) shows
    # in metrics.json that the run was trained anew, not resumed from the first run's checkpoint
    train = Forecaster.train

    def short(cfg, *args, **kwargs):
        return train(replace(cfg, trainer=replace(cfg.trainer, max_steps=20)), *args, **kwargs)

    monkeypatch.setattr(Forecaster, "train", short)
    run_forecast_demo(tmp_path / "demo", console=Console(file=io.StringIO()))
    assert json.loads((tmp_path / "demo" / "metrics.json").read_text())["training"]["steps"] == 20
    assert (tmp_path / "demo" / "forecast_next_year.csv").is_file()


def test_forecast_demo_refuses_a_directory_it_did_not_make(tmp_path):
    import pytest

    from rnnkit.demo import run_forecast_demo

    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="holds files that the demo did not make"):
        run_forecast_demo(tmp_path, console=Console(file=io.StringIO()))
    assert (tmp_path / "mine.txt").read_text() == "keep me"
