"""What a training shows and keeps: progress on the console and the ``metrics.csv`` log.

On a terminal progress is a rich bar; otherwise (a log file, a pipe, a batch job) it is a plain line every
``interval`` seconds and one per evaluation, so a long run is never silent for minutes.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    """The training log, kept in memory and written whole to ``path`` (atomically) by :meth:`flush`.

    The Trainer flushes it with every checkpoint and records how many rows it held, so a resumed run keeps exactly
    those rows: rows logged after the last checkpoint of a killed run are dropped, not repeated. ``path`` None
    (no run directory, or not process 0) keeps nothing on disk. Columns grow as new metrics appear.
    """

    def __init__(self, path: Path | None, rows: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = rows or []
        self._dirty = True  # a fresh run replaces whatever log was there

    @classmethod
    def resume(cls, path: Path | None, keep: int | None, step: int) -> MetricsLog:
        """The log at ``path`` cut to its first ``keep`` rows (checkpoints before this field existed: the rows up
        to ``step``)."""
        rows: list[dict[str, Any]] = []
        if path is not None and path.is_file():
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        if keep is not None:
            rows = rows[:keep]
        else:
            rows = [r for r in rows if str(r.get("step", "")).isdigit() and int(r["step"]) <= step]
        return cls(path, rows)

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._dirty = True

    def flush(self) -> None:
        """Write the whole log to ``path`` if it changed (a temporary file renamed into place)."""
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.rows:
            self.path.unlink(missing_ok=True)
        else:
            columns = list(dict.fromkeys(k for r in self.rows for k in r))
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            with tmp.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                writer.writeheader()
                writer.writerows(self.rows)
            os.replace(tmp, self.path)
        self._dirty = False


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """Training progress on ``console`` (default: standard output): a bar on a terminal, plain lines otherwise.

    ``update(row)`` after every optimizer step with ``step``, ``epoch``, ``train_loss``, ``lr``, ``items_per_s``;
    ``evaluated(row)`` after every evaluation with ``step``, ``epoch`` and the metrics; ``stop()`` at the end.
    """

    def __init__(self, total: int | None, start_step: int = 0, interval: float = 30.0, console: Any = None) -> None:
        from rich.console import Console

        self.total, self.start_step, self.interval = total, start_step, interval
        self.console = console if console is not None else Console()
        self._t0 = self._last = time.monotonic()
        self._bar: Any = None
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.add_task("train", total=total, completed=start_step, info="")
            self._bar.start()

    def update(self, row: dict[str, Any]) -> None:
        if self._bar is not None:
            self._show(row)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            elapsed = now - self._t0
            done = row["step"] - self.start_step
            eta = "?"
            if self.total is not None and done > 0:
                eta = _hms(elapsed / done * max(self.total - row["step"], 0))
            self._line(
                f"step {self._of(row['step'])}  epoch {row['epoch']}  loss {row['train_loss']:.4g}  "
                f"lr {row['lr']:.3g}  items/s {row['items_per_s']:.0f}  elapsed {_hms(elapsed)}  eta {eta}"
            )

    def evaluated(self, row: dict[str, Any]) -> None:
        if self._bar is not None:
            self._show(row)
            return
        metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k not in ("step", "epoch"))
        self._line(f"eval step {self._of(row['step'])}  epoch {row['epoch']}  {metrics}")

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _of(self, step: int) -> str:
        return f"{step}/{self.total}" if self.total is not None else str(step)

    def _show(self, row: dict[str, Any]) -> None:
        info = "  ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k not in ("step", "epoch"))
        self._bar.update(self._bar.task_ids[0], completed=row["step"], info=info)

    def _line(self, text: str) -> None:
        # straight to the file: rich would wrap long lines and read "[...]" as markup
        self.console.file.write(text + "\n")
        self.console.file.flush()
