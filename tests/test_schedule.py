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
