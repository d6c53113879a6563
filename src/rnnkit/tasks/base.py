"""What every task shares: the run directory, training through the Trainer, saving and loading predictors.

A run directory (``--out``) holds:

    model/            the trained predictor (config.json + model.safetensors): what rnnkit.load() opens
    checkpoint/       the last training state, for --resume
    best/             the best weights by the validation metric
    metrics.csv       the training log;  loss.png  its curves
    metrics.json      evaluation results; predictions and plots written by the task
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import from_dict, to_dict
from ..data.batching import BucketBatchSampler, pad_collate
from ..training.checkpoint import WEIGHTS, load_weights, read_config, save_checkpoint
from ..training.trainer import Trainer, TrainerConfig, TrainState

RUN_PARTS = ("model", "checkpoint", "best", "metrics.csv", "metrics.json", "loss.png")


def prepare_out(out: str | Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Make ``out`` ready for a training run; never clobbers an earlier run unless told to."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a directory for the run")
    taken = [p for p in RUN_PARTS if (out / p).exists()]
    if taken and not (overwrite or resume):
        raise ValueError(
            f"{out} already holds a run ({', '.join(taken)}); pass --overwrite to replace it or --resume to continue it"
        )
    if taken and overwrite and not resume:
        for part in taken:
            target = out / part
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_writable(path: str | Path | None, overwrite: bool) -> Path | None:
    """An output file that may be written: refuses to replace an existing file without ``overwrite``."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(path: str | Path) -> Path:
    """The predictor directory of ``path``: a run directory (``path/model``) or a model directory itself."""
    path = Path(path)
    if (path / "model" / WEIGHTS).is_file():
        return path / "model"
    if (path / WEIGHTS).is_file():
        return path
    if not path.exists():
        raise ValueError(f"{path} does not exist; expected a run directory made by 'rnnkit train'")
    raise ValueError(f"{path} holds no trained model (expected {path}/model/{WEIGHTS}); train one with 'rnnkit train'")


class Task:
    """A trained predictor for one kind of data. Subclasses set ``name`` and ``Config`` and implement
    ``build_model``, ``artifacts``/``from_artifacts``, ``evaluate`` and ``predict``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object

    def __init__(self, cfg: Any, model: nn.Module) -> None:
        self.cfg, self.model = cfg, model

    # ---- persistence -------------------------------------------------------------------------------------------
    def artifacts(self) -> dict[str, Any]:
        """JSON-able data the model needs besides its weights (vocabularies, scalers, label names)."""
        return {}

    @classmethod
    def from_artifacts(cls, cfg: Any, artifacts: dict[str, Any]) -> Task:
        raise NotImplementedError

    def run_config(self) -> dict[str, Any]:
        return {"task": self.name, "config": to_dict(self.cfg), "artifacts": self.artifacts()}

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.model, self.run_config())

    @classmethod
    def load(cls, path: str | Path) -> Task:
        path = model_dir(path)
        data = read_config(path)
        if data.get("task") != cls.name:
            raise ValueError(
                f"{path} holds a {data.get('task')!r} model, not a {cls.name!r} one; "
                f"use the matching command (rnnkit ... with a {cls.name} run)"
            )
        task = cls.from_artifacts(from_dict(cls.Config, data["config"]), data.get("artifacts", {}))
        load_weights(task.model, path)
        task.model.eval()
        return task

    # ---- training ------------------------------------------------------------------------------------------------
    def fit(
        self,
        train: Iterable,
        val: Iterable | None,
        loss_fn: Callable[..., Any],
        out: Path,
        trainer_cfg: TrainerConfig,
        *,
        evaluate_fn: Callable[..., dict[str, float]] | None = None,
        resume: bool = False,
    ) -> TrainState:
        """Train with the Trainer, keep the best weights, save the predictor to ``out/model`` and the curves."""
        trainer = Trainer(
            self.model, trainer_cfg, loss_fn, evaluate_fn=evaluate_fn, out_dir=out, run_config=self.run_config()
        )
        state = trainer.fit(train, val, resume=resume)
        if trainer.interrupted:
            raise KeyboardInterrupt(f"training interrupted at step {state.step}; continue with --resume")
        if val is not None and (out / "best" / WEIGHTS).is_file():
            load_weights(self.model, out / "best")
        self.model.eval()
        self.save(out / "model")
        from ..plots import plot_training

        plot_training(out / "metrics.csv", out / "loss.png")
        return state


def bucket_loader(
    data: list, batch_size: int, *, shuffle: bool, seed: int = 0, pad: int = 0, sequences: tuple[int, ...] = (0,)
) -> DataLoader:
    """Padded batches of similar-length examples; ``example[0]`` is the sequence whose length groups them and the
    fields in ``sequences`` are padded (see :func:`rnnkit.data.batching.pad_collate`)."""
    sampler = BucketBatchSampler([len(x[0]) for x in data], batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(
        data, batch_sampler=sampler, collate_fn=functools.partial(pad_collate, pad=pad, sequences=sequences)
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def set_seed(seed: int) -> None:
    """Seed weights and data order before building a model (the Trainer seeds the rest)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
