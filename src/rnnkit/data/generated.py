"""Training data drawn fresh for every batch (the adding problem, copy memory), reproducible for exact resume."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

#: ``make(batch_size, generator) -> (x, y)``: one batch of a generated task
MakeBatch = Callable[[int, torch.Generator], tuple[Tensor, ...]]


class GeneratedBatches:
    """``batches`` new batches per epoch from ``make``; every sample is new (no example is ever seen twice).

    Epoch ``e``'s batches are a function of ``(seed, e)`` alone (the Trainer calls :meth:`set_epoch`), so a run
    resumed mid-epoch sees exactly the batches it would have seen, and two runs with the same seed see the same
    data, whatever they did before.

    Example::

        train = GeneratedBatches(lambda n, g: adding_problem(n, 1000, generator=g), batch_size=32, batches=100)
    """

    def __init__(self, make: MakeBatch, batch_size: int, batches: int, seed: int = 0) -> None:
        if batch_size < 1 or batches < 1:
            raise ValueError(f"GeneratedBatches: batch_size and batches must be >= 1, got {batch_size}, {batches}")
        self.make, self.batch_size, self.batches, self.seed = make, batch_size, batches, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        # a key from (seed, epoch) that is unrelated across nearby seeds and epochs
        key = int(np.random.SeedSequence([self.seed & (2**63 - 1), self.epoch]).generate_state(1, np.uint64)[0])
        gen = torch.Generator().manual_seed(key & (2**63 - 1))
        for _ in range(self.batches):
            yield self.make(self.batch_size, gen)


def fixed_batches(make: MakeBatch, n: int, batch_size: int, seed: int) -> list[tuple[Tensor, ...]]:
    """``n`` samples drawn once with ``seed``, as a list of batches of ``batch_size`` (a validation or test set)."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"fixed_batches: n and batch_size must be >= 1, got {n}, {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    return [make(min(batch_size, n - start), gen) for start in range(0, n, batch_size)]
