"""Data-parallel training through torchrun: one process per core (gloo) or per GPU (nccl).

    torchrun --nproc_per_node 2 -m rnnkit.cli train ...   # or your own script calling init_distributed()

Each process trains on its shard of the data (:func:`shard_sampler`); DistributedDataParallel averages gradients
so every process takes the same step; logging, progress and checkpoints happen on rank 0 only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ...); single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def info() -> DistInfo:
    """Rank and world size of this process (world size 1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def is_main() -> bool:
    return info().is_main


def wrap(model: nn.Module) -> nn.Module:
    """The model wrapped for gradient averaging (a no-op in a single process). Move the model to its device
    first: a model on a GPU is bound to that GPU (``device_ids``), one on the CPU is not."""
    if info().world_size == 1 or isinstance(model, nn.parallel.DistributedDataParallel):
        return model
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if device.type != "cuda":
        return nn.parallel.DistributedDataParallel(model)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return nn.parallel.DistributedDataParallel(model, device_ids=[index])


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shard_sampler(dataset: Dataset, *, shuffle: bool = True, seed: int = 0) -> DistributedSampler | None:
    """A sampler giving this process its share of ``dataset`` (None in a single process)."""
    i = info()
    if i.world_size == 1:
        return None
    return DistributedSampler(dataset, num_replicas=i.world_size, rank=i.rank, shuffle=shuffle, seed=seed)


def mean_across_processes(values: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over all processes (identity in a single process)."""
    if info().world_size == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t)
    return {k: float(v) / info().world_size for k, v in zip(keys, t.tolist())}


def any_across_processes(flag: bool) -> bool:
    """True on every process if ``flag`` is true on any (so that all take the same branch, e.g. to checkpoint)."""
    if info().world_size == 1:
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _collective_device() -> torch.device:
    # NCCL only reduces GPU tensors; gloo takes CPU ones
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if info().world_size > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
