"""Learning-rate schedules."""

from __future__ import annotations

import math

import pytest

from rnnkit.training.schedule import LRSchedule


def test_warmup_then_cosine():
    s = LRSchedule(1.0, "cosine", warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert s.lr(0) == pytest.approx(0.1) and s.lr(9) == pytest.approx(1.0)
    assert s.lr(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr(110) == pytest.approx(0.1) and s.lr(500) == pytest.approx(0.1)


def test_plateau_lowers_after_patience_bad_evals():
    s = LRSchedule(1.0, "plateau", factor=0.5, patience=2)
    assert not s.observe(1.0)
    assert not s.observe(1.1)
    assert s.observe(1.2) and s.lr(0) == 0.5
    assert not s.observe(0.9) and s.bad_evals == 0
    up = LRSchedule(1.0, "plateau", patience=1, mode="max")
    up.observe(0.5)
    assert up.observe(0.4) and up.lr(0) == 0.5


def test_state_round_trip_and_errors():
    s = LRSchedule(0.1, "plateau")
    s.observe(1.0)
    s.observe(2.0)
    assert LRSchedule(**s.state()) == s
    with pytest.raises(ValueError, match="cosine schedule needs the number of training steps"):
        LRSchedule(0.1, "cosine")
    with pytest.raises(ValueError, match="schedule must be"):
        LRSchedule(0.1, "step")


def test_planned_steps_count_every_tbptt_chunk():
    import torch

    from rnnkit.data.batching import StreamBatches
    from rnnkit.training.schedule import planned_steps, steps_per_epoch

    streams = StreamBatches(torch.arange(601), batch_size=4, timestep=12)  # 150 steps a stream: 12 x 12 + 6
    assert len(streams) == 13 and steps_per_epoch(streams) == 13
    assert steps_per_epoch(streams, tbptt=5) == 12 * 3 + 2 and steps_per_epoch(streams, tbptt=12) == 13
    assert planned_steps(streams, 3, tbptt=5) == 3 * 38 and planned_steps(streams, 3, 5, max_steps=50) == 50
    assert steps_per_epoch([1, 2, 3]) == 3 and steps_per_epoch([1, 2, 3], tbptt=4) is None, "chunks unknown"
    assert planned_steps(iter([1, 2]), 2) is None and planned_steps(iter([1, 2]), 2, max_steps=7) == 7


def test_uncounted_results_never_lower_the_rate_but_still_set_the_best():
    s = LRSchedule(1.0, "plateau", factor=0.5, patience=1, mode="max")
    assert not s.observe(0.0, count=False) and not s.observe(0.0, count=False) and s.lr(0) == 1.0
    assert not s.observe(0.3, count=False) and s.best == 0.3  # an improvement counts whenever it comes
    assert s.observe(0.2) and s.lr(0) == 0.5  # once counted, the first result that is no better lowers the rate
