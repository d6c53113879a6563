"""The memory demo runs end to end on a small configuration and reports every cell."""

from __future__ import annotations

import io

from rich.console import Console

from rnnkit.data.synthetic import ADDING_BASELINE_MSE
from rnnkit.demo import MemoryDemoConfig, run_memory_demo


def test_memory_demo_small_run_reports_each_cell():
    cfg = MemoryDemoConfig(timestep=20, hidden_size=16, steps=(("rnn_tanh", 30), ("gru", 300)), eval_every=50)
    out = io.StringIO()
    results = run_memory_demo(cfg, Console(file=out, width=120))
    assert [r.cell for r in results] == ["rnn_tanh", "gru"]
    assert results[0].steps == 30
    gru = results[1]
    assert gru.val_mse < 0.5 * ADDING_BASELINE_MSE, "a GRU at T=20 learns the adding problem within 300 steps"
    text = out.getvalue()
    assert "baseline 0.167" in text and "rnn_tanh" in text and "remembered?" in text
