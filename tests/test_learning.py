"""Learning on tasks that can only be solved by remembering (small and fast, but real)."""

from __future__ import annotations

import torch
from torch import nn

from rnnkit import Recurrent
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem


def train_adding(kind: str, timestep: int, steps: int, seed: int = 0, batch: int = 64) -> float:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rnn, head = Recurrent(kind, 2, 32), nn.Linear(32, 1)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        x, y = adding_problem(batch, timestep, generator=gen)
        loss = nn.functional.mse_loss(head(rnn(x)[0][:, -1]), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    x, y = adding_problem(1000, timestep, generator=torch.Generator().manual_seed(1234))
    with torch.no_grad():
        return nn.functional.mse_loss(head(rnn(x)[0][:, -1]), y).item()


def test_lstm_solves_the_adding_problem_at_t50():
    mse = train_adding("lstm", 50, steps=1200)
    assert mse < 0.01, f"LSTM at T=50: validation MSE {mse:.4f}, expected < 0.01 (baseline {ADDING_BASELINE_MSE:.3f})"


def test_vanilla_rnn_stays_at_the_baseline_at_t200():
    mse = train_adding("rnn_tanh", 200, steps=400, batch=32)
    assert mse > 0.8 * ADDING_BASELINE_MSE, f"a tanh RNN at T=200 should not beat the mean predictor, got {mse:.4f}"
