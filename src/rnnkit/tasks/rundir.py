"""The run directory of a training (``--out``): one writer at a time, nothing replaced unasked, nothing left
behind by a run that failed before it had anything worth keeping."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ..errors import option
from ..training import distributed as D
from ..training.checkpoint import WEIGHTS, find_checkpoint
from ..training.rundir import RunLock

#: what every training writes into its run directory (a task adds its own ``outputs``)
RUN_PARTS = ("model", "checkpoint", "best", "metrics.csv", "metrics.json", "loss.png")


class RunDirectory:
    """``with RunDirectory(out, overwrite=..., resume=...) as run:`` prepares ``out`` for a training run.

    On entry (process 0 of a distributed run; the others wait): refuses a file, refuses an earlier run unless
    ``overwrite`` or ``resume``, refuses ``resume`` without a checkpoint, creates the directory and takes its lock
    (a second training into the same directory fails, naming the holder). :meth:`clear_previous` removes an earlier
    run for ``overwrite``, called once the new run's data has been read, so bad input costs nothing. On a failure
    (not an interruption), whatever this run created is removed again unless it already wrote a checkpoint.
    """

    def __init__(
        self, out: str | Path, *, overwrite: bool = False, resume: bool = False, extra: Sequence[str] = ()
    ) -> None:
        self.path = Path(out)
        self.overwrite, self.resume = overwrite, resume
        self.parts = (*RUN_PARTS, *extra)
        self._lock: RunLock | None = None
        self._existed = False
        self._before: set[str] = set()

    def __enter__(self) -> RunDirectory:
        if D.is_main():
            if self.path.exists() and not self.path.is_dir():
                raise ValueError(f"{option('out')} {self.path} is a file; give a directory for the run")
            self._existed = self.path.exists()
            self._before = {p.name for p in self.path.iterdir()} if self._existed else set()
            self.path.mkdir(parents=True, exist_ok=True)
            lock = RunLock(self.path)
            lock.__enter__()  # first: a run in progress explains the state of the directory best
            self._lock = lock  # (had that failed, the directory is another run's: nothing here to clean up)
            try:
                self._check()
            except BaseException:
                self.__exit__(None, None, None)
                self._cleanup()
                raise
        D.barrier()
        return self

    def _check(self) -> None:
        out = self.path
        taken = [p for p in self.parts if (out / p).exists()]
        if self.resume:
            if find_checkpoint(out / "checkpoint") is None:
                raise ValueError(
                    f"{out} holds no checkpoint to resume (expected {out}/checkpoint); start a fresh run without "
                    f"{option('resume')}"
                )
        elif taken and not self.overwrite:
            raise ValueError(
                f"{out} already holds a run ({', '.join(taken)}); pass {option('overwrite')} to replace it or "
                f"{option('resume')} to continue it"
            )

    def clear_previous(self) -> None:
        """Remove an earlier run's parts (for ``overwrite``; a no-op when resuming)."""
        if not (self.overwrite and not self.resume and D.is_main()):
            return
        for part in self.parts:
            target = self.path / part
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            self._before.discard(part)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._lock is not None:
            self._lock.__exit__(kind, exc, tb)
            self._lock = None
        if kind is not None and D.is_main():
            self._cleanup()

    def _cleanup(self) -> None:
        """Remove what this run created, unless it got far enough to be resumed (a checkpoint of its own)."""
        if "checkpoint" not in self._before and find_checkpoint(self.path / "checkpoint") is not None:
            return
        if not self._existed:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for entry in self.path.iterdir():
            if entry.name not in self._before:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def check_writable(path: str | Path | None, overwrite: bool) -> Path | None:
    """An output file that may be written: refuses to replace an existing file without ``overwrite``."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass {option('overwrite')} to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(path: str | Path) -> Path:
    """The predictor directory of ``path``: a run directory (``path/model``) or a model directory itself."""
    path = Path(path)
    for candidate in (path / "model", path):
        found = find_checkpoint(candidate.absolute())  # also the previous copy if a crash interrupted a replacement
        if found is not None and (found / WEIGHTS).is_file():
            return found
    if not path.exists():
        raise ValueError(f"{path} does not exist; expected a run directory made by 'rnnkit train'")
    if find_checkpoint((path / "checkpoint").absolute()) is not None:
        raise ValueError(
            f"{path} holds an unfinished training (a checkpoint, no model yet); finish it with the same "
            f"'rnnkit train' command plus {option('resume')}"
        )
    raise ValueError(f"{path} holds no trained model (expected {path}/model/{WEIGHTS}); train one with 'rnnkit train'")
