"""The Task template: train, evaluate, predict, save, load and resume, written once for every task.

A task declares only what differs (the hooks below): how to ``read`` its data, ``split`` it, ``build`` the
vocabularies/scalers and the model from the training part, batch (``loader``), the ``loss``, how to ``score``
validation batches, and what it writes as predictions (``report_part``). :meth:`Task.train` runs the rest:

    lock the run directory -> seed -> read -> split -> build -> loaders -> Trainer (checkpoints, early stopping,
    resume) -> best weights -> model/ -> loss.png -> metrics on val/test + predictions -> metrics.json

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
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..config import from_dict, to_dict
from ..data.batching import BucketBatchSampler, pad_collate
from ..devices import resolve_device, to_device
from ..training import distributed as D
from ..training.checkpoint import WEIGHTS, find_checkpoint, load_weights, read_config, save_checkpoint
from ..training.trainer import Trainer, TrainerConfig, TrainState
from .flags import Flag
from .rundir import RunDirectory, check_writable, model_dir

__all__ = ["Splits", "Task", "bucket_loader", "check_writable", "model_dir", "set_seed", "write_json"]


@dataclass
class Splits:
    """The parts of a task's data: lists of examples (or whatever the task's ``read`` returns)."""

    train: Any
    val: Any = None
    test: Any = None


@dataclass
class Inputs:
    """What ``rnnkit evaluate`` / ``predict`` were given; each task reads the fields it understands."""

    data: Path | None = None
    files: list[Path] | None = None
    src: Path | None = None
    tgt: Path | None = None
    part: str = "all"
    beam: int | None = None
    text: bool = False
    column: str | None = None
    plot: Path | None = None
    backtest: int | None = None  # forecast: rolling origins over the test part
    retrain: bool = False  # forecast backtest: train afresh at each origin
    run: Path | None = None  # the run directory evaluated (where a backtest writes its table and plot)
    overwrite: bool = False  # files written into the run directory may replace earlier ones


class Task:
    """A trained predictor for one kind of data; subclasses set the class attributes and write the hooks."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    #: one line for ``rnnkit train --help`` and an example command
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    #: the task's own ``rnnkit train <task>`` flags (the shared ones are declared in cli_train)
    flags: ClassVar[tuple[Flag, ...]] = ()
    #: config paths of the recurrent cores that --cell/--hidden/--layers set
    rnn_keys: ClassVar[tuple[str, ...]] = ("rnn",)
    #: written by training besides the shared parts (cleared by --overwrite)
    outputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Any, model: nn.Module) -> None:
        self.cfg, self.model = cfg, model
        self.training: dict[str, Any] = {}  # after train(): epochs, steps, seconds and why training stopped

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def to(self, device: str | torch.device) -> Task:
        """Move the model to ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``); returns ``self``."""
        self.model.to(resolve_device(device))
        return self

    def batches(self, loader: Iterable) -> Iterator[Any]:
        """The batches of ``loader`` on the model's device."""
        device = self.device
        for batch in loader:
            yield to_device(batch, device)

    # ---- hooks: what each task declares ------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: Any, source: Any) -> Any:
        """The examples in ``source`` (a path, several paths or a DataFrame)."""
        raise NotImplementedError

    @classmethod
    def split(cls, cfg: Any, data: Any, dev: Any = None, test: Any = None) -> Splits:
        """Train/val/test parts: given files win; otherwise seeded random hold-outs of ``cfg.val_fraction`` and
        ``cfg.test_fraction`` of the examples."""
        n = len(data)
        val_fraction = getattr(cfg, "val_fraction", 0.0) if dev is None else 0.0
        test_fraction = getattr(cfg, "test_fraction", 0.0) if test is None else 0.0
        n_val = max(1, round(val_fraction * n)) if val_fraction > 0 and n > 2 else 0
        n_test = max(1, round(test_fraction * n)) if test_fraction > 0 and n > 2 else 0
        if n_val or n_test:
            order = np.random.default_rng(cfg.trainer.seed).permutation(n)
            pick = lambda idx: [data[i] for i in idx]  # noqa: E731
            val = pick(order[:n_val]) if n_val else dev
            test = pick(order[n_val : n_val + n_test]) if n_test else test
            data = pick(order[n_val + n_test :])
        return Splits(data, dev if dev is not None else (val if n_val else None), test)

    @classmethod
    def build(cls, cfg: Any, train: Any) -> Task:
        """Fit what the model needs from the training examples (vocabularies, scalers) and build the model."""
        raise NotImplementedError

    def loader(self, examples: Any, *, train: bool) -> Iterable:
        """Batches of ``examples``: shuffled by (seed, epoch) and sharded across processes when ``train``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any, *state: Any) -> Any:
        """The training loss of one batch (``model`` may be wrapped for DDP: call ``unwrap(model).loss``)."""
        raise NotImplementedError

    def score(self, loader: Iterable) -> dict[str, float]:
        """Validation metrics over a loader's batches (``loss`` and the task's own); the default is the mean loss."""
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in self.batches(loader):
                n = int(batch[0].shape[0])
                total, count = total + float(self.loss(self.model, batch)) * n, count + n
        return {"loss": total / max(count, 1)}

    def evaluate_examples(self, examples: Any) -> dict[str, Any]:
        """Metrics on examples as ``read`` returns them."""
        return self.score(self.loader(examples, train=False))

    def report_part(self, examples: Any, out: Path) -> dict[str, Any]:
        """Metrics on a held-out part, and its predictions written into ``out`` (the test part's win)."""
        return self.evaluate_examples(examples)

    def report(self, out: Path, splits: Splits) -> dict[str, Any]:
        """What ``metrics.json`` holds after training: metrics of the val and test parts."""
        metrics: dict[str, Any] = {}
        for part in ("val", "test"):
            examples = getattr(splits, part)
            if examples is not None and len(examples):
                metrics[part] = self.report_part(examples, out)
                if baseline := self.baselines(splits.train, examples):
                    metrics[part]["baseline"] = baseline
        return metrics

    def baselines(self, train: Any, examples: Any) -> dict[str, float]:
        """Scores of simple models fitted on ``train`` and scored on ``examples`` (e.g. the most frequent tag), so
        the report shows whether the network beats them. None by default."""
        return {}

    def trainer_config(self) -> TrainerConfig:
        return self.cfg.trainer

    def artifacts(self) -> dict[str, Any]:
        """JSON-able data the model needs besides its weights (vocabularies, scalers, label names)."""
        return {}

    @classmethod
    def from_artifacts(cls, cfg: Any, artifacts: dict[str, Any]) -> Task:
        raise NotImplementedError

    # ---- hooks for the command line ------------------------------------------------------------------------------
    @classmethod
    def sources(cls, given: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``(data, dev, test)`` for :meth:`train` from the CLI's input flags."""
        return given.get("data"), given.get("dev"), given.get("test")

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        """``rnnkit evaluate``: metrics on the labelled data in ``inputs``."""
        if inputs.data is None:
            raise ValueError("give --data with the labelled data to evaluate on")
        return self.evaluate_examples(self.read(self.cfg, inputs.data))

    def predict_inputs(self, inputs: Inputs) -> str:
        """``rnnkit predict``: the predictions for ``inputs`` as the text of the output file."""
        raise ValueError(f"a {self.name} model has no 'rnnkit predict'")

    # ---- the template ------------------------------------------------------------------------------------------
    @classmethod
    def run_training(
        cls,
        cfg: Any,
        data: Any,
        out: str | Path,
        *,
        dev: Any = None,
        test: Any = None,
        overwrite: bool = False,
        resume: bool = False,
    ) -> tuple[Task, dict[str, Any]]:
        """Read, split, build, train (with checkpoints; ``resume`` continues an interrupted run), evaluate the
        held-out parts, write predictions and ``metrics.json`` into ``out``. Returns the task and its metrics."""
        with RunDirectory(out, overwrite=overwrite, resume=resume, extra=cls.outputs) as run:
            set_seed(cfg.trainer.seed)
            splits = cls.split(
                cfg,
                cls.read(cfg, data),
                None if dev is None else cls.read(cfg, dev),
                None if test is None else cls.read(cfg, test),
            )
            task = cls.build(cfg, splits.train)
            task.to(cfg.trainer.device)
            train_batches = task.loader(splits.train, train=True)
            val_batches = task.loader(splits.val, train=False) if splits.val is not None and len(splits.val) else None
            run.clear_previous()  # only now: bad input above must not cost the user an earlier run
            task.fit(train_batches, val_batches, run.path, resume=resume)
            metrics = task.report(run.path, splits) if D.is_main() else {}
            metrics["training"] = task.training  # how long it trained and why it stopped
            if D.is_main():
                write_json(run.path / "metrics.json", metrics)
            D.barrier()
        return task, metrics

    #: the Python entry point; a task may override it with a friendlier signature (the CLI calls run_training)
    train = run_training

    def fit(self, train: Iterable, val: Iterable | None, out: Path, *, resume: bool = False) -> TrainState:
        """Train with the Trainer, keep the best weights, save the predictor to ``out/model`` and the curves."""

        def evaluate_fn(model: nn.Module, loader: Iterable) -> dict[str, float]:
            return {f"val_{k}": float(v) for k, v in self.score(loader).items() if k != "n"}

        trainer = Trainer(
            self.model,
            self.trainer_config(),
            self.loss,
            evaluate_fn=evaluate_fn if val is not None else None,
            out_dir=out,
            run_config=self.run_config(),
        )
        state = trainer.fit(train, val, resume=resume)
        if trainer.interrupted:
            raise KeyboardInterrupt(f"training interrupted at step {state.step}; continue with --resume")
        cfg = trainer.cfg
        self.training = {
            "stopped": trainer.stop_reason(),
            "epochs": state.epoch,
            "steps": state.step,
            "seconds": round(state.seconds, 1),
            **({f"best_{cfg.monitor}": state.best} if state.best is not None else {}),
        }
        best = find_checkpoint(out / "best")
        if val is not None and best is not None and (best / WEIGHTS).is_file():
            load_weights(self.model, best)
        self.model.eval()
        if D.is_main():
            self.save(out / "model")
            from ..plots import plot_training

            plot_training(out / "metrics.csv", out / "loss.png")
        D.barrier()
        return state

    # ---- persistence -------------------------------------------------------------------------------------------
    def run_config(self) -> dict[str, Any]:
        return {"task": self.name, "config": to_dict(self.cfg), "artifacts": self.artifacts()}

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.model, self.run_config())

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> Task:
        """The predictor saved in ``path`` (a run directory or its ``model/``), on ``device``."""
        path = model_dir(path)
        data = read_config(path)
        if cls.name and data.get("task") != cls.name:
            raise ValueError(
                f"{path} holds a {data.get('task')!r} model, not a {cls.name!r} one; "
                f"use the matching command (rnnkit ... with a {cls.name} run)"
            )
        task = cls.from_artifacts(from_dict(cls.Config, data["config"]), data.get("artifacts", {}))
        load_weights(task.model, path)
        task.to(device)
        task.model.eval()
        return task


def bucket_loader(
    data: list,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    pad: int = 0,
    sequences: tuple[int, ...] = (0,),
    collate: Callable[[list], Any] | None = None,
) -> DataLoader:
    """Padded batches of similar-length examples; ``example[0]`` is the sequence whose length groups them and the
    fields in ``sequences`` are padded (see :func:`rnnkit.data.batching.pad_collate`; ``collate`` replaces it).
    A shuffled (training) loader gives each process of a distributed run its share of the batches."""
    info = D.info() if shuffle else D.DistInfo()
    sampler = BucketBatchSampler(
        [len(x[0]) for x in data],
        batch_size,
        shuffle=shuffle,
        seed=seed,
        num_replicas=info.world_size,
        rank=info.rank,
    )
    return DataLoader(
        data,
        batch_sampler=sampler,
        collate_fn=collate or functools.partial(pad_collate, pad=pad, sequences=sequences),
        generator=torch.Generator().manual_seed(seed),  # creating an iterator must not draw from the global RNG
    )


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def set_seed(seed: int) -> None:
    """Seed weights and data order before building a model (the Trainer seeds the rest)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tensor_batches(tensors: tuple[Tensor, ...], size: int) -> Iterator[tuple[Tensor, ...]]:
    """Consecutive slices of ``size`` rows of equally long tensors (inference without a DataLoader)."""
    for i in range(0, len(tensors[0]), size):
        yield tuple(t[i : i + size] for t in tensors)
