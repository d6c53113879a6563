"""A small data-parallel training job for test_distributed.py (run under torchrun; not a test itself)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.training import distributed as D
from rnnkit.training.trainer import Trainer, TrainerConfig


def data(n: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(n, 6, 2, generator=g)
    return [(x, x[:, 0].sum().view(1, 1)) for x in xs]


def build() -> ManyToOne:
    torch.manual_seed(0)
    return ManyToOne(
        ManyToOneConfig(
            InputConfig(input_size=2), RNNConfig(cell="lstm", hidden_size=8), head=HeadConfig(kind="regression")
        )
    )


def loss_fn(model, batch):
    x, y = batch
    return D.unwrap(model).loss(model(x), y)


def train(out: Path | None, global_batch: int = 16) -> tuple[ManyToOne, list[float]]:
    info = D.init_distributed()
    dataset = data()
    sampler = D.shard_sampler(dataset, shuffle=False)
    loader = DataLoader(dataset, batch_size=global_batch // info.world_size, sampler=sampler)
    model = build()
    state = Trainer(model, TrainerConfig(epochs=3, lr=1e-2, progress=False), loss_fn, out_dir=out).fit(loader)
    return model, state.train_loss


if __name__ == "__main__":
    out = Path(sys.argv[1])
    model, losses = train(out)
    rank = D.info().rank
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"rank{rank}.safetensors"))
    (out / f"rank{rank}.json").write_text(json.dumps(losses))
    D.cleanup()
