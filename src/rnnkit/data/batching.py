"""Batches: padding with lengths, bucketing by length, and contiguous streams for stateful language models."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler


def pad_sequences(seqs: Sequence[Sequence[int] | Tensor], pad: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad id sequences (or ``(T_i, F)`` tensors) into ``(B, T_max[, F])`` plus ``lengths (B,)``."""
    if not seqs:
        raise ValueError("pad_sequences: empty batch")
    tensors = [s if isinstance(s, Tensor) else torch.as_tensor(list(s), dtype=torch.long) for s in seqs]
    lengths = torch.tensor([len(t) for t in tensors], dtype=torch.long)
    T = int(lengths.max())
    out = tensors[0].new_full((len(tensors), T, *tensors[0].shape[1:]), pad)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
    return out, lengths


def pad_collate(batch: Sequence[tuple], pad: int = 0, sequences: Sequence[int] = (0,)) -> tuple[Tensor, ...]:
    """Collate ``(field_0, field_1, ...)`` samples: the fields listed in ``sequences`` are padded and followed by
    their lengths, the others are stacked. E.g. ``sequences=(0, 1)`` for (tokens, tags) gives
    ``(x, x_lengths, y, y_lengths)``. Float sequences are padded with 0, id sequences with ``pad``.
    Use ``functools.partial(pad_collate, sequences=...)`` as a DataLoader's ``collate_fn``.
    """
    out: list[Tensor] = []
    for k, field in enumerate(zip(*batch)):
        if k in sequences:
            padded, lengths = pad_sequences(field, 0 if _is_float(field[0]) else pad)
            out += [padded, lengths]
        elif isinstance(field[0], Tensor):
            out.append(torch.stack(list(field)))
        else:
            out.append(torch.as_tensor(list(field)))
    return tuple(out)


def _is_float(x: object) -> bool:
    return isinstance(x, Tensor) and x.is_floating_point()


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length samples: less padding, the same samples each epoch (each exactly once).

    The order is shuffled by ``(seed, epoch)`` (call :meth:`set_epoch`), then cut into pools of ``pool_batches``
    batches, each pool sorted by length and cut into batches, and the batches shuffled. Deterministic for a given
    seed and epoch, which is what exact resumption needs. In a distributed run (``num_replicas`` processes) process
    ``rank`` takes every ``num_replicas``-th batch; the list is first padded by repeating batches so that every
    process takes the same number of steps (DDP needs that).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"BucketBatchSampler: batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"BucketBatchSampler: rank must be in 0..{num_replicas - 1}, got {rank}")
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool, self.drop_last, self.epoch = pool_batches * batch_size, drop_last, 0
        self.num_replicas, self.rank = num_replicas, rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=gen).tolist() if self.shuffle else list(range(n))
        batches = []
        for start in range(0, n, self.pool):
            pool = sorted(order[start : start + self.pool], key=lambda i: self.lengths[i])
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=gen).tolist()
            batches = [batches[i] for i in perm]
        if self.num_replicas > 1 and batches:
            total = -(-len(batches) // self.num_replicas) * self.num_replicas
            batches = (batches * (total // len(batches) + 1))[:total][self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.drop_last:
            count = sum(-(-min(self.pool, n - s) // self.batch_size) for s in range(0, n, self.pool))
        else:
            count = sum(min(self.pool, n - s) // self.batch_size for s in range(0, n, self.pool))
        return -(-count // self.num_replicas)


class StreamBatches:
    """A token stream as ``B`` parallel contiguous streams, served in windows of ``timestep`` steps.

    The ids are cut into ``B`` equal contiguous pieces (the tail that does not divide is dropped); window ``k`` is
    ``x = streams[:, k*timestep : (k+1)*timestep]`` and ``y`` the same shifted by one. Row ``b`` of consecutive
    windows continues the same text, so a language model can carry its state from window to window (stateful
    TBPTT). Iterating yields ``(x (B, t), y (B, t))``. In a distributed run each of ``num_replicas`` processes
    reads its own ``B / num_replicas`` of the streams (``rank``, ``rank + num_replicas``, ...).
    """

    def __init__(
        self, ids: Sequence[int] | Tensor, batch_size: int, timestep: int, *, rank: int = 0, num_replicas: int = 1
    ) -> None:
        ids = torch.as_tensor(ids, dtype=torch.long)
        if batch_size < 1 or timestep < 1:
            raise ValueError(f"StreamBatches: batch_size and timestep must be >= 1, got {batch_size}, {timestep}")
        if batch_size < num_replicas:
            raise ValueError(f"StreamBatches: {batch_size} streams cannot be shared by {num_replicas} processes")
        per_stream = (len(ids) - 1) // batch_size
        if per_stream < 1:
            raise ValueError(f"StreamBatches: {len(ids)} tokens are too few for {batch_size} streams")
        self.x = ids[: per_stream * batch_size].view(batch_size, per_stream)[rank::num_replicas]
        self.y = ids[1 : per_stream * batch_size + 1].view(batch_size, per_stream)[rank::num_replicas]  # next token
        self.timestep = timestep

    def __len__(self) -> int:
        return -(-self.x.shape[1] // self.timestep)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, self.x.shape[1], self.timestep):
            yield self.x[:, start : start + self.timestep], self.y[:, start : start + self.timestep]
