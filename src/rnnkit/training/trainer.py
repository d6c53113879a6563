"""The Trainer: fit / evaluate with AdamW, clipping, schedules, early stopping, TBPTT, checkpoints and resume.

A task hands the Trainer a model and a loss function; the Trainer owns everything around the optimizer step.

* ``loss_fn(model, batch) -> loss`` for ordinary batches; with ``TrainerConfig.tbptt`` set, the batches are
  consecutive windows of the same streams (:class:`rnnkit.data.batching.StreamBatches`) and the call is
  ``loss_fn(model, batch, state) -> (loss, state)``: the state is carried from window to window (and across
  chunks of ``tbptt`` steps within a longer batch) and detached at every border.
* ``evaluate_fn(model, data) -> {"val_loss": ..., ...}``; by default the mean ``loss_fn`` over ``data``.
* Resume is exact: counters, optimizer, schedule, early-stopping state, the carried TBPTT state, the RNG states
  and the position inside the epoch are all in the checkpoint; loaders must order batches by ``(seed, epoch)``
  (anything with ``set_epoch``, e.g. :class:`rnnkit.data.batching.BucketBatchSampler`, DistributedSampler, or no
  shuffling at all).
"""

from __future__ import annotations

import csv
import random
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import distributed as D
from .checkpoint import (
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .schedule import LRSchedule
from .tbptt import detach_state


@dataclass
class TrainerConfig:
    """Optimisation and bookkeeping options.

    Attributes:
        epochs: passes over the training data.
        max_steps: stop after this many optimizer steps (overrides ``epochs`` when reached first).
        lr, weight_decay, betas: AdamW.
        clip_norm: clip the global gradient norm to this (None: no clipping).
        schedule: ``constant``, ``cosine`` (needs a known number of steps) or ``plateau``; ``warmup_steps`` of
            linear warmup first; ``min_lr_ratio`` the cosine floor; ``plateau_factor``/``plateau_patience``.
        early_stopping: stop after this many evaluations without improvement of ``monitor`` (None: never).
        monitor, mode: the validation metric that decides "better" (``min`` or ``max``).
        eval_every: evaluate every this many steps (None: at the end of every epoch).
        checkpoint_every: also checkpoint every this many steps (checkpoints are always written after an
            evaluation and when training ends or is interrupted).
        tbptt: truncated-BPTT window in timesteps: carry the state across batches, cut gradients every window.
        log_every: steps between progress/log updates.
        seed: seeds Python, NumPy and torch at the start of a fresh run.
        progress: show a progress bar.
    """

    epochs: int = 10
    max_steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float | None = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    early_stopping: int | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    eval_every: int | None = None
    checkpoint_every: int | None = None
    tbptt: int | None = None
    log_every: int = 20
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"TrainerConfig: epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"TrainerConfig: lr must be > 0, got {self.lr}")
        if self.tbptt is not None and self.tbptt < 1:
            raise ValueError(f"TrainerConfig: tbptt must be >= 1, got {self.tbptt}")


class Callback:
    """Hooks into training; override what you need. ``trainer.stop()`` ends training after the current batch."""

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None: ...

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...


LossFn = Callable[..., Any]
EvalFn = Callable[[nn.Module, Iterable], dict[str, float]]


@dataclass
class TrainState:
    """Counters and records that a checkpoint must carry."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    train_loss: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)


def _set_epoch(data: Iterable, epoch: int) -> None:
    for obj in (data, getattr(data, "sampler", None), getattr(data, "batch_sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def _batch_size(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if isinstance(first, Tensor) and first.dim() else 1


class Trainer:
    """Fit a model. ``out_dir`` (optional) receives ``checkpoint/``, ``best/`` and ``metrics.csv``;
    ``run_config`` is written into each checkpoint's ``config.json`` (what :func:`rnnkit.load` rebuilds from)."""

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainerConfig,
        loss_fn: LossFn,
        *,
        evaluate_fn: EvalFn | None = None,
        callbacks: Sequence[Callback] = (),
        out_dir: str | Path | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.loss_fn, self.callbacks = cfg, loss_fn, list(callbacks)
        self.evaluate_fn = evaluate_fn
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.run_config = run_config or {}
        self.dist = D.info()
        self.model = model
        self.ddp = D.wrap(model)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas
        )
        self.state = TrainState()
        self.schedule: LRSchedule | None = None
        self.carried: tuple[Tensor, ...] | None = None  # TBPTT state between batches
        self._stop = False
        self._saved_step = -1
        self._pending_rng: tuple[dict[str, Any], dict[str, Tensor]] | None = None
        self._log_rows: list[dict[str, Any]] = []

    @property
    def interrupted(self) -> bool:
        """Training ended because :meth:`stop` was called (or Ctrl-C), not by finishing or early stopping."""
        cfg, st = self.cfg, self.state
        finished = st.epoch >= cfg.epochs or (cfg.max_steps is not None and st.step >= cfg.max_steps)
        return self._stop and not st.stopped_early and not finished

    # ---- control -------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """End training after the current batch, writing a checkpoint (what Ctrl-C does)."""
        self._stop = True

    # ---- evaluation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data: Iterable) -> dict[str, float]:
        """Validation metrics (``evaluate_fn``, or the mean loss as ``val_loss``), averaged over processes."""
        was = self.model.training
        self.model.eval()
        try:
            if self.evaluate_fn is not None:
                metrics = self.evaluate_fn(self.model, data)
            else:
                total, count, state = 0.0, 0, None
                for batch in data:
                    if self.cfg.tbptt:
                        loss, state = self.loss_fn(self.model, batch, state)
                    else:
                        loss = self.loss_fn(self.model, batch)
                    n = _batch_size(batch)
                    total, count = total + float(loss) * n, count + n
                metrics = {"val_loss": total / max(count, 1)}
        finally:
            self.model.train(was)
        return D.mean_across_processes(metrics)

    # ---- training ------------------------------------------------------------------------------------------
    def _make_schedule(self, train: Iterable) -> LRSchedule:
        total = self.cfg.max_steps
        if total is None and self.cfg.schedule == "cosine":
            try:
                total = self.cfg.epochs * len(train)  # type: ignore[arg-type]
            except TypeError:
                raise ValueError("a cosine schedule needs max_steps, or a training loader with a length") from None
        return LRSchedule(
            self.cfg.lr,
            self.cfg.schedule,
            self.cfg.warmup_steps,
            total or 0,
            self.cfg.min_lr_ratio,
            self.cfg.plateau_factor,
            self.cfg.plateau_patience,
            self.cfg.mode,
        )

    def _train_batch(self, batch: Any) -> float:
        """One batch: one optimizer step, or one per TBPTT chunk. Returns the mean loss."""
        if not self.cfg.tbptt:
            return self._optimize(lambda: self.loss_fn(self.ddp, batch))
        x, y = batch[0], batch[1]
        losses = []
        for start in range(0, x.shape[1], self.cfg.tbptt):
            chunk = (x[:, start : start + self.cfg.tbptt], y[:, start : start + self.cfg.tbptt], *batch[2:])

            def run(chunk: tuple = chunk) -> Tensor:
                loss, self.carried = self.loss_fn(self.ddp, chunk, self.carried)
                return loss

            losses.append(self._optimize(run))
            self.carried = detach_state(self.carried)  # type: ignore[assignment]
        return float(np.mean(losses))

    def _optimize(self, compute: Callable[[], Tensor]) -> float:
        assert self.schedule is not None
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(self.state.step)
        loss = compute()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {float(loss.detach())} at step {self.state.step}; lower the learning rate "
                "(lr), keep gradient clipping on (clip_norm), or check the data for NaN/inf"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
        self.optimizer.step()
        self.state.step += 1
        return float(loss.detach())

    def _after_eval(self, metrics: dict[str, float]) -> None:
        assert self.schedule is not None
        if self.cfg.monitor not in metrics:
            raise ValueError(f"monitor {self.cfg.monitor!r} is not among the evaluation metrics {sorted(metrics)}")
        value = metrics[self.cfg.monitor]
        self.state.evals.append({"step": self.state.step, **metrics})
        self.schedule.observe(value)
        better = self.state.best is None or (
            value < self.state.best if self.cfg.mode == "min" else value > self.state.best
        )
        if better:
            self.state.best, self.state.bad_evals = value, 0
            self._save("best", with_trainer_state=False)
        else:
            self.state.bad_evals += 1
            if self.cfg.early_stopping is not None and self.state.bad_evals >= self.cfg.early_stopping:
                self.state.stopped_early = True
                self._stop = True
        for cb in self.callbacks:
            cb.on_evaluate(self, metrics)

    def fit(self, train: Iterable, val: Iterable | None = None, *, resume: bool = False) -> TrainState:
        """Train; with ``resume=True`` continue from ``out_dir/checkpoint`` if it exists. Returns the final state."""
        resumed = resume and self._restore(train)
        if not resumed:
            self._seed(self.cfg.seed)
            self.schedule = self._make_schedule(train)
        self._stop = False
        previous = signal.getsignal(signal.SIGINT)
        if self.dist.is_main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, lambda *_: self.stop())  # Ctrl-C: finish the batch, checkpoint, stop
        try:
            self._loop(train, val, resumed)
        finally:
            if signal.getsignal(signal.SIGINT) is not previous:
                signal.signal(signal.SIGINT, previous)
            self._flush_log()
        return self.state

    def _loop(self, train: Iterable, val: Iterable | None, resumed: bool) -> None:
        cfg, st = self.cfg, self.state
        rng_after_skip = self._pending_rng if resumed else None
        progress = self._progress(train)
        try:
            while st.epoch < cfg.epochs and not self._done():
                _set_epoch(train, st.epoch)
                iterator = iter(train)
                for _ in range(st.batch_in_epoch):  # resuming mid-epoch: skip what was already trained on
                    next(iterator)
                if rng_after_skip is not None:
                    set_rng_state(*rng_after_skip)
                    rng_after_skip = None
                if st.batch_in_epoch == 0:
                    self.carried = None
                tic, seen = time.perf_counter(), 0
                for batch in iterator:
                    loss = self._train_batch(batch)
                    st.batch_in_epoch += 1
                    st.train_loss.append(loss)
                    seen += _batch_size(batch)
                    for cb in self.callbacks:
                        cb.on_step_end(self, st.step, loss)
                    if st.step % cfg.log_every == 0 or self._stop:
                        rate = seen / max(time.perf_counter() - tic, 1e-9)
                        self._log(
                            {
                                "step": st.step,
                                "epoch": st.epoch,
                                "train_loss": loss,
                                "lr": self.optimizer.param_groups[0]["lr"],
                                "items_per_s": rate,
                            },
                            progress,
                        )
                    if cfg.eval_every and val is not None and st.step % cfg.eval_every == 0:
                        self._evaluate_and_log(val, progress)
                    if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0:
                        self._save("checkpoint")
                    if self._done():
                        break
                else:  # the epoch ran to its end
                    st.epoch += 1
                    st.batch_in_epoch = 0
                    if val is not None and not cfg.eval_every:
                        self._evaluate_and_log(val, progress)
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, st.epoch)
                    self._save("checkpoint")
                    continue
                break
            if self._saved_step != st.step:
                self._save("checkpoint")
        finally:
            if progress is not None:
                progress.stop()

    def _done(self) -> bool:
        return self._stop or (self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps)

    def _evaluate_and_log(self, val: Iterable, progress: Any) -> None:
        metrics = self.evaluate(val)
        self._after_eval(metrics)
        self._log({"step": self.state.step, "epoch": self.state.epoch, **metrics}, progress)

    # ---- bookkeeping ---------------------------------------------------------------------------------------
    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _progress(self, train: Iterable) -> Any:
        if not (self.cfg.progress and self.dist.is_main):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        total = self.cfg.max_steps
        if total is None:
            try:
                per_epoch = len(train)  # type: ignore[arg-type]
                chunks = 1
                if self.cfg.tbptt and isinstance(getattr(train, "timestep", None), int):
                    chunks = -(-train.timestep // self.cfg.tbptt)  # type: ignore[attr-defined]
                total = self.cfg.epochs * per_epoch * chunks
            except TypeError:
                total = None
        progress.add_task("train", total=total, completed=self.state.step, info="")
        progress.start()
        return progress

    def _log(self, row: dict[str, Any], progress: Any) -> None:
        if not self.dist.is_main:
            return
        self._log_rows.append(row)
        if progress is not None:
            info = "  ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k not in ("epoch",)
            )
            progress.update(progress.task_ids[0], completed=self.state.step, info=info)
        if len(self._log_rows) >= 50:
            self._flush_log()

    def _flush_log(self) -> None:
        """Append logged rows to ``out_dir/metrics.csv`` (columns grow as new metrics appear)."""
        if not self._log_rows or self.out_dir is None or not self.dist.is_main:
            self._log_rows = []
            return
        path = self.out_dir / "metrics.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        old: list[dict[str, Any]] = list(csv.DictReader(path.open())) if path.exists() else []
        rows = old + self._log_rows
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        self._log_rows = []

    def _save(self, name: str, with_trainer_state: bool = True) -> None:
        """Write ``out_dir/name`` on rank 0; every rank calls this at the same points (it ends in a barrier)."""
        if with_trainer_state:
            self._saved_step = self.state.step
        if self.out_dir is not None and self.dist.is_main:
            trainer_state = tensors = None
            if with_trainer_state:
                assert self.schedule is not None
                opt_tensors, opt_meta = optimizer_to_tensors(self.optimizer)
                rng_meta, rng_tensors = rng_state()
                carried = {f"carried.{i}": s for i, s in enumerate(self.carried or ())}
                tensors = {**opt_tensors, **rng_tensors, **carried}
                trainer_state = {
                    "state": asdict(self.state),
                    "schedule": self.schedule.state(),
                    "optimizer": opt_meta,
                    "rng": rng_meta,
                    "carried": len(self.carried or ()),
                    "config": asdict(self.cfg),
                }
            save_checkpoint(
                self.out_dir / name, self.model, self.run_config, trainer_state=trainer_state, tensors=tensors
            )
        D.barrier()

    def _restore(self, train: Iterable) -> bool:
        if self.out_dir is None:
            raise ValueError("resume needs the Trainer's out_dir (where the checkpoint is)")
        path = self.out_dir / "checkpoint"
        loaded = read_trainer_state(path) if path.exists() else None
        if loaded is None:
            return False
        from .checkpoint import load_weights

        meta, tensors = loaded
        load_weights(self.model, path)
        optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
        self.state = TrainState(**meta["state"])
        self.schedule = LRSchedule(**meta["schedule"])
        n = meta.get("carried", 0)
        self.carried = tuple(tensors[f"carried.{i}"] for i in range(n)) or None
        self._pending_rng = (meta["rng"], tensors)
        self._saved_step = self.state.step
        return True
