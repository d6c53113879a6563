"""The Trainer: fit / evaluate with AdamW, clipping, schedules, early stopping, TBPTT, checkpoints and resume.

A task hands the Trainer a model and a loss function; the Trainer owns everything around the optimizer step.

* ``loss_fn(model, batch) -> loss`` for ordinary batches; with ``TrainerConfig.tbptt`` set, the batches are
  consecutive windows of the same streams (:class:`rnnkit.data.batching.StreamBatches`) and the call is
  ``loss_fn(model, batch, state) -> (loss, state)``: the state is carried from window to window (and across
  chunks of ``tbptt`` steps within a longer batch) and detached at every border.
* ``evaluate_fn(model, data) -> {"val_loss": ..., ...}``; by default the mean ``loss_fn`` over ``data``.
* Resume is exact, mid-epoch or at an epoch end: counters, optimizer, schedule, early-stopping state, the carried
  TBPTT state, the RNG states, the position inside the epoch and the number of ``metrics.csv`` rows are all in the
  checkpoint. Loaders must order batches by ``(seed, epoch)``: anything with ``set_epoch`` (e.g.
  :class:`rnnkit.data.batching.BucketBatchSampler`, DistributedSampler), a DataLoader (the Trainer gives one
  without a ``generator`` its own, seeded by ``(seed, epoch)``, so creating its iterator never draws from the
  global RNG), or no shuffling at all.
* Checkpoints (``out_dir/checkpoint``) are written at epoch ends, every ``checkpoint_every``
  steps and ``checkpoint_minutes`` minutes, and when training ends or is interrupted; the log is flushed with each.
* The model, every batch and the carried state live on ``TrainerConfig.device``; checkpoints are device-free.
"""

from __future__ import annotations

import itertools
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
from torch.utils.data import DataLoader

from ..devices import resolve_device, to_device
from ..errors import option
from ..precision import autocast, check_precision
from . import distributed as D
from .checkpoint import (
    load_weights,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_trainer_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainerConfig, parse_every
from .loaders import batch_size, seed_loaders, set_epoch, unseeded_loaders
from .progress import MetricsLog, Progress
from .schedule import LRSchedule, planned_steps
from .tbptt import detach_state

__all__ = ["Callback", "TrainState", "Trainer", "TrainerConfig", "parse_every"]

_clock = time.monotonic  # what time-based checkpoints measure (tests replace it)


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
    seconds: float = 0.0
    train_loss: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)


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
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.device.index is None and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per process
        check_precision(cfg.precision, self.device, name=option("precision"))
        # fp16 needs its gradients scaled (bf16 has float32's range and does not)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        self.model = model.to(self.device)
        self.ddp = D.wrap(model)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas
        )
        self.state = TrainState()
        self.schedule: LRSchedule | None = None
        self.carried: tuple[Tensor, ...] | None = None  # TBPTT state between batches
        self._stop = False
        self._saved_step = -1
        self._last_save = 0.0
        self._pending_rng: tuple[dict[str, Any], dict[str, Tensor]] | None = None
        self._session_start, self._session_base = _clock(), 0.0
        self._data_seed = cfg.seed
        self._train_loaders: list[tuple[DataLoader, bool]] = []
        self._val_loaders: list[tuple[DataLoader, bool]] = []
        self.log = MetricsLog(None)

    @property
    def interrupted(self) -> bool:
        """Training ended because :meth:`stop` was called (or Ctrl-C), not by finishing or early stopping."""
        cfg, st = self.cfg, self.state
        finished = st.epoch >= cfg.epoch_limit or (cfg.max_steps is not None and st.step >= cfg.max_steps)
        return self._stop and not st.stopped_early and not finished and not self._over_budget()

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
            with autocast(self.cfg.precision, self.device):
                metrics = self._evaluate(data)
        finally:
            self.model.train(was)
        return D.mean_across_processes(metrics)

    def _evaluate(self, data: Iterable) -> dict[str, float]:
        if self.evaluate_fn is not None:
            return self.evaluate_fn(self.model, data)
        total, count, state = 0.0, 0, None
        for batch in data:
            batch = to_device(batch, self.device)
            if self.cfg.tbptt:
                loss, state = self.loss_fn(self.model, batch, state)
            else:
                loss = self.loss_fn(self.model, batch)
            n = batch_size(batch)
            total, count = total + float(loss) * n, count + n
        return {"val_loss": total / max(count, 1)}

    # ---- training ------------------------------------------------------------------------------------------
    def _planned_steps(self, train: Iterable) -> int | None:
        return planned_steps(train, self.cfg.epoch_limit, self.cfg.tbptt, self.cfg.max_steps)

    def _make_schedule(self, train: Iterable) -> LRSchedule:
        total = self._planned_steps(train)
        if total is None and self.cfg.schedule == "cosine":
            raise ValueError(
                "a cosine schedule needs max_steps, or training data with a length (with tbptt: windows of a known "
                "timestep, as StreamBatches has)"
            )
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
        with autocast(self.cfg.precision, self.device):
            loss = compute()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {float(loss.detach())} at step {self.state.step}; lower the learning rate "
                "(lr), keep gradient clipping on (clip_norm), or check the data for NaN/inf"
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # fp16: scale the loss, unscale before clipping, skip steps that overflowed
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            if self.cfg.clip_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
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
        better = self.state.best is None or (
            value < self.state.best if self.cfg.mode == "min" else value > self.state.best
        )
        if better:
            self.state.best, self.state.bad_evals = value, 0
            self._save("best", with_trainer_state=False)
        else:
            self.state.bad_evals += 1
        ready = self.state.step >= self.cfg.min_steps and self._past_floor()  # can a plateau be called yet?
        self.schedule.observe(value, count=ready or not self.cfg.plateau_waits)
        patience = self.cfg.early_stopping
        if not better and patience is not None and self.state.bad_evals >= patience and ready:
            self.state.stopped_early = True
            self._stop = True
        for cb in self.callbacks:
            cb.on_evaluate(self, metrics)

    def _past_floor(self) -> bool:
        """Whether the best ``monitor`` value has passed ``early_stopping_floor`` (always, without a floor)."""
        floor, best = self.cfg.early_stopping_floor, self.state.best
        if floor is None:
            return True
        return best is not None and (best > floor if self.cfg.mode == "max" else best < floor)

    def fit(self, train: Iterable, val: Iterable | None = None, *, resume: bool = False) -> TrainState:
        """Train; with ``resume=True`` continue from ``out_dir/checkpoint`` (an error if there is none). Returns the
        final state."""
        self._train_loaders, self._val_loaders = unseeded_loaders(train), unseeded_loaders(val)
        if resume:
            self._restore()
        else:
            self._seed(self.cfg.seed)
            self._data_seed = self.cfg.seed
            self.schedule = self._make_schedule(train)
            self.log = MetricsLog(self._metrics_path())
        self._stop = False
        self._session_start, self._session_base = _clock(), self.state.seconds
        # Ctrl-C and SIGTERM (a scheduler's or `kill`'s request): finish the batch, checkpoint, stop; only where the
        # process still has the default handlers (a caller with its own keeps them)
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        previous = {sig: signal.getsignal(sig) for sig in defaults}
        if self.dist.is_main:
            for sig, default in defaults.items():
                if previous[sig] is default:
                    signal.signal(sig, lambda *_: self.stop())
        try:
            self._loop(train, val, resume)
        finally:
            for sig, handler in previous.items():
                if signal.getsignal(sig) is not handler:
                    signal.signal(sig, handler)
            self.log.flush()
        return self.state

    def _loop(self, train: Iterable, val: Iterable | None, resumed: bool) -> None:
        cfg, st = self.cfg, self.state
        rng, self._pending_rng = (self._pending_rng if resumed else None), None
        progress = self._progress(train)
        try:
            per_epoch: int | None = len(train)  # type: ignore[arg-type]
        except TypeError:
            per_epoch = None
        self._last_save = _clock()
        try:
            while st.epoch < cfg.epoch_limit and not self._done():
                set_epoch(train, st.epoch)
                seed_loaders(self._train_loaders, self._data_seed, st.epoch, salt=1)
                if rng is not None:  # first: creating the iterator may draw from the RNG, as in the original run
                    set_rng_state(*rng)
                iterator = iter(train)
                if st.batch_in_epoch:  # resuming mid-epoch: skip what was already trained on
                    if sum(1 for _ in itertools.islice(iterator, st.batch_in_epoch)) < st.batch_in_epoch:
                        raise ValueError(
                            f"the checkpoint is {st.batch_in_epoch} batches into epoch {st.epoch}, but the training "
                            "data has fewer now; resume with the data the run started with"
                        )
                    if rng is not None:  # reading the skipped batches replayed draws made before the checkpoint
                        set_rng_state(*rng)
                else:
                    self.carried = None
                rng = None
                tic, seen = time.perf_counter(), 0
                for batch in iterator:
                    batch = to_device(batch, self.device)
                    loss = self._train_batch(batch)
                    st.batch_in_epoch += 1
                    st.train_loss.append(loss)
                    seen += batch_size(batch)
                    for cb in self.callbacks:
                        cb.on_step_end(self, st.step, loss)
                    row = {
                        "step": st.step,
                        "epoch": st.epoch + 1,  # counted from 1, as the evaluation rows are
                        "train_loss": loss,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "items_per_s": seen / max(time.perf_counter() - tic, 1e-9),
                    }
                    if progress is not None:
                        progress.update(row)
                    # every log_every steps and at each epoch's last batch (so even a short run has a curve); never
                    # on a stop: the log must not depend on interruptions
                    if st.step % cfg.log_every == 0 or st.batch_in_epoch == per_epoch:
                        self._log(row)
                    if cfg.eval_every and val is not None and st.step % cfg.eval_every == 0:
                        self._evaluate_and_log(val, progress)
                    if self._checkpoint_due():
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
        cfg = self.cfg
        return self._stop or (cfg.max_steps is not None and self.state.step >= cfg.max_steps) or self._over_budget()

    def _over_budget(self) -> bool:
        budget = self.cfg.time_budget
        # every process stops at the same step, whatever its own clock says
        return budget is not None and D.any_across_processes(self._elapsed() >= 60 * budget)

    def _elapsed(self) -> float:
        """Seconds of training so far, over every session of a resumed run."""
        return self._session_base + (_clock() - self._session_start)

    def stop_reason(self) -> str:
        """Why training ended: early stopping, the epoch limit, max_steps, the time budget or an interruption."""
        cfg, st = self.cfg, self.state
        if st.stopped_early:
            return f"early stopping: {cfg.monitor} did not improve for {cfg.early_stopping} evaluations"
        if cfg.max_steps is not None and st.step >= cfg.max_steps:
            return f"max_steps ({cfg.max_steps}) reached"
        if st.epoch >= cfg.epoch_limit:
            return f"{'epochs' if cfg.epochs is not None else 'max_epochs'} ({cfg.epoch_limit}) reached"
        if self._over_budget():
            return f"time budget ({cfg.time_budget:g} minutes) reached"
        return "interrupted"

    def _checkpoint_due(self) -> bool:
        cfg = self.cfg
        if cfg.checkpoint_every and self.state.step % cfg.checkpoint_every == 0:
            return True
        if cfg.checkpoint_minutes is None or self.out_dir is None:
            return False
        # every process must save at the same step (saving ends in a barrier), whatever its own clock says
        return D.any_across_processes(_clock() - self._last_save >= 60 * cfg.checkpoint_minutes)

    def _evaluate_and_log(self, val: Iterable, progress: Progress | None) -> None:
        seed_loaders(self._val_loaders, self._data_seed, 0, salt=2)  # every evaluation sees the same order
        metrics = self.evaluate(val)
        self._after_eval(metrics)
        st = self.state
        row = {"step": st.step, "epoch": st.epoch + (1 if st.batch_in_epoch else 0), **metrics}
        self._log(row)
        if progress is not None:
            progress.evaluated(row)

    # ---- bookkeeping ---------------------------------------------------------------------------------------
    @staticmethod
    def _seed(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _progress(self, train: Iterable) -> Progress | None:
        if not (self.cfg.progress and self.dist.is_main):
            return None
        return Progress(self._planned_steps(train), self.state.step, self.cfg.progress_seconds)

    def _metrics_path(self) -> Path | None:
        return self.out_dir / "metrics.csv" if self.out_dir is not None and self.dist.is_main else None

    def _log(self, row: dict[str, Any]) -> None:
        if self.dist.is_main:
            self.log.append(row)

    def _save(self, name: str, with_trainer_state: bool = True) -> None:
        """Write ``out_dir/name`` on rank 0; every rank calls this at the same points (it ends in a barrier)."""
        if with_trainer_state:
            self._saved_step, self._last_save = self.state.step, _clock()
            self.state.seconds = self._elapsed()
        if self.out_dir is not None and self.dist.is_main:
            trainer_state = tensors = None
            if with_trainer_state:
                assert self.schedule is not None
                self.log.flush()  # before the checkpoint that counts its rows: a crash between loses nothing
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
                    "log_rows": len(self.log),
                    "config": asdict(self.cfg),
                }
            save_checkpoint(
                self.out_dir / name, self.model, self.run_config, trainer_state=trainer_state, tensors=tensors
            )
        D.barrier()

    def _restore(self) -> None:
        if self.out_dir is None:
            raise ValueError("resume needs the Trainer's out_dir (where the checkpoint is)")
        path = self.out_dir / "checkpoint"
        loaded = read_trainer_state(path)  # also finds the checkpoint a crashed save left as .checkpoint.old
        if loaded is None:
            raise ValueError(
                f"there is no checkpoint to resume in {path}; start a fresh run without {option('resume')}"
            )
        meta, tensors = loaded
        load_weights(self.model, path)
        optimizer_from_tensors(self.optimizer, tensors, meta["optimizer"])
        self.state = TrainState(**meta["state"])
        self.schedule = LRSchedule(**meta["schedule"])
        n = meta.get("carried", 0)
        self.carried = tuple(tensors[f"carried.{i}"].to(self.device) for i in range(n)) or None
        self._pending_rng = (meta["rng"], tensors)
        self._saved_step = self.state.step
        self._data_seed = meta.get("config", {}).get("seed", self.cfg.seed)
        self.log = MetricsLog.resume(self._metrics_path(), meta.get("log_rows"), self.state.step)
