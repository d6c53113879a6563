"""The training data as the Trainer sees it: epochs, per-epoch seeding of DataLoaders, batch sizes.

Exact resumption needs the batches of an epoch to be a function of ``(seed, epoch)``. A DataLoader without a
``generator`` draws its workers' base seed (and a ``shuffle=True`` sampler its order) from the global torch RNG each
time an iterator is created, so the Trainer gives such loaders a generator of their own, reseeded every epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, RandomSampler


def set_epoch(data: Iterable, epoch: int) -> None:
    """Tell ``data``, its sampler or its batch sampler which epoch starts (anything with ``set_epoch``)."""
    for obj in (data, getattr(data, "sampler", None), getattr(data, "batch_sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def unseeded_loaders(data: Iterable | None) -> list[tuple[DataLoader, bool]]:
    """The DataLoaders in ``data`` (itself or a wrapper's ``.loader``) with no generator of their own (or the one the
    Trainer gave them), each with whether its RandomSampler (``shuffle=True``) shares that generator."""
    found = []
    for obj in (data, getattr(data, "loader", None)):
        if isinstance(obj, DataLoader) and obj.generator in (None, getattr(obj, "_rnnkit_generator", None)):
            sampler = obj.sampler
            shared = isinstance(sampler, RandomSampler) and sampler.generator in (None, obj.generator)
            found.append((obj, shared))
    return found


def seed_loaders(loaders: list[tuple[DataLoader, bool]], seed: int, epoch: int, salt: int) -> None:
    """Give each of ``loaders`` (from :func:`unseeded_loaders`) a fresh generator seeded by ``(seed, epoch, salt)``."""
    key = int(np.random.SeedSequence([seed & (2**64 - 1), epoch, salt]).generate_state(1, np.uint64)[0])
    for loader, shared in loaders:
        gen = torch.Generator().manual_seed(key)
        loader.generator = loader._rnnkit_generator = gen  # type: ignore[attr-defined]
        if shared:
            loader.sampler.generator = gen  # type: ignore[attr-defined]


def batch_size(batch: Any) -> int:
    """Items in a batch: the first dimension of its (first) tensor."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if isinstance(first, Tensor) and first.dim() else 1
