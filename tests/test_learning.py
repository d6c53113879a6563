"""Learning on tasks that can only be solved by remembering (small and fast, but real)."""

from __future__ import annotations

from _adding import mse, train_adding
from rnnkit.data.synthetic import ADDING_BASELINE_MSE


def test_lstm_solves_the_adding_problem_at_t50(adding_lstm):
    # trained once per session (conftest.py) until a validation set is at half the bound, at most 1200 updates
    assert adding_lstm.timestep == 50
    got = mse(adding_lstm.model, 50, 1000, seed=1234)  # sequences that did not decide when to stop
    assert got < 0.01, (
        f"LSTM at T=50: test MSE {got:.4f} after {adding_lstm.steps} updates, expected < 0.01 "
        f"(baseline {ADDING_BASELINE_MSE:.3f})"
    )


def test_vanilla_rnn_stays_at_the_baseline_at_t200():
    # a negative result: it needs its whole budget, so no early exit
    got = mse(train_adding("rnn_tanh", 200, 400, batch=32).model, 200, 1000, seed=1234)
    assert got > 0.8 * ADDING_BASELINE_MSE, f"a tanh RNN at T=200 should not beat the mean predictor, got {got:.4f}"
