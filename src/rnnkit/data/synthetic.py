"""Generated memory tasks: problems a network can only solve by remembering across many timesteps."""

from __future__ import annotations

import torch
from torch import Tensor

#: MSE of always predicting the mean (1.0) on the adding problem: Var(U1 + U2) = 2/12.
ADDING_BASELINE_MSE = 1.0 / 6.0


def adding_problem(
    batch_size: int, timestep: int, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015).

    Each sequence has two channels: values drawn from U(0, 1) and a marker that is 1 at exactly two positions, one
    in each half. The target is the sum of the two marked values. Predicting the mean gives MSE 1/6 ≈ 0.167.

    Returns:
        ``x (B, T, 2)`` and ``y (B, 1)``.
    """
    if timestep < 2 or batch_size < 1:
        raise ValueError(f"adding_problem: need batch_size >= 1 and timestep >= 2, got {batch_size}, {timestep}")
    values = torch.rand(batch_size, timestep, generator=generator)
    half = timestep // 2
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, timestep, (batch_size,), generator=generator)
    marker = torch.zeros(batch_size, timestep)
    rows = torch.arange(batch_size)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    x = torch.stack([values, marker], -1)
    y = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return x, y


def copy_memory(
    batch_size: int, delay: int, *, length: int = 10, symbols: int = 8, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The copy-memory task (Arjovsky et al. 2016).

    A sequence of ``length`` symbols from ``1..symbols``, then ``delay - 1`` blanks (0), a go marker
    (``symbols + 1``) and ``length`` more blanks; the target is blanks everywhere except the last ``length`` steps,
    which repeat the first ``length`` symbols. Guessing gives cross-entropy ``length * log(symbols) / (delay + 2L)``.

    Returns:
        token ids ``x (B, delay + 2*length)`` and targets ``y (B, delay + 2*length)``, both int64.
    """
    if delay < 1 or length < 1 or symbols < 2:
        raise ValueError(f"copy_memory: need delay >= 1, length >= 1, symbols >= 2; got {delay}, {length}, {symbols}")
    T = delay + 2 * length
    seq = torch.randint(1, symbols + 1, (batch_size, length), generator=generator)
    x = torch.zeros(batch_size, T, dtype=torch.long)
    y = torch.zeros(batch_size, T, dtype=torch.long)
    x[:, :length] = seq
    x[:, length + delay - 1] = symbols + 1
    y[:, -length:] = seq
    return x, y
