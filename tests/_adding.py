"""The adding problem's training loop for tests that need a recurrent layer trained on it (test_learning, and
test_horizon through the session fixture ``adding_lstm`` in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit import CellInit, Recurrent
from rnnkit.data.synthetic import adding_problem


class AddingNet(nn.Module):
    """A recurrent layer and a linear read-out of its last step: ``x (B, T, 2) -> (B, 1)``."""

    def __init__(self, cell: str, hidden_size: int = 32, init: CellInit | None = None) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden_size, init=init)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


@dataclass
class Trained:
    """A trained :class:`AddingNet` (in eval mode), the length it was trained at, the updates it took and its MSE
    on the validation set that decided when to stop."""

    model: AddingNet
    timestep: int
    steps: int
    val_mse: float


def mse(model: nn.Module, timestep: int, n: int, seed: int) -> float:
    """Mean squared error on ``n`` fresh sequences drawn with ``seed``."""
    x, y = adding_problem(n, timestep, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return nn.functional.mse_loss(model(x), y).item()


def train_adding(
    cell: str,
    timestep: int,
    max_steps: int,
    *,
    stop_below: float | None = None,
    lr: float = 1e-2,
    batch: int = 64,
    seed: int = 0,
    init: CellInit | None = None,
    check_every: int = 50,
) -> Trained:
    """Adam on fresh batches until the MSE on 500 validation sequences (seed 1) is below ``stop_below`` (checked
    every ``check_every`` updates) or ``max_steps`` updates were made; ``stop_below=None`` always runs all of them.

    The validation set only decides when to stop: a test asserts its bound on other sequences (see :func:`mse`).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AddingNet(cell, init=init)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = 0
    while step < max_steps:
        step += 1
        x, y = adding_problem(batch, timestep, generator=gen)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if stop_below is not None and step % check_every == 0 and mse(model, timestep, 500, seed=1) < stop_below:
            break
    return Trained(model.eval(), timestep, step, mse(model, timestep, 500, seed=1))
