"""The run directory's lock: one training writes into an ``--out`` directory at a time.

``out/.lock`` is held with an exclusive, non-blocking ``flock`` for as long as a training runs, and records who
holds it (pid, host, start time, command line) so that a second writer's error names the holder. The lock belongs
to the open file, so it ends with its process however that ends (``kill -9`` included): a lock file left behind
is never a problem and is simply taken over by the next run.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import option

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is not taken there
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class RunLockedError(ValueError):
    """Another training holds the run directory."""


def _command_line() -> str:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return shlex.join(argv)


class RunLock:
    """``with RunLock(out): ...`` holds ``out/.lock`` while a training writes into ``out`` (creating ``out``).

    A second acquisition, from another process or this one, raises :class:`RunLockedError`. ``command`` is the
    command line recorded for other writers to see (default: this process's ``sys.argv``).
    """

    def __init__(self, out: str | Path, *, command: str | None = None) -> None:
        self.path = Path(out)
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """This object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLockedError` naming the holder. Returns ``self``."""
        if self._fd is not None:
            return self
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{option('out')} {self.path} is a file; give a directory for the run")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(self._busy(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": self.command if self.command is not None else _command_line(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (closing the file releases the flock); the file stays for the next run to take."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _busy(self, holder: dict[str, Any] | None) -> str:
        who = (
            f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}: "
            f"{holder.get('command')}"
            if holder
            else "its details are not readable"
        )
        return (
            f"{self.path} is in use by another training ({who}); wait for it to finish or choose another "
            f"{option('out')}"
        )

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any] | None:
    """What the holder wrote into the lock file (it may be a moment late: it writes just after locking)."""
    for _ in range(20):
        try:
            data = json.loads(os.pread(fd, 1 << 16, 0).decode())
            if isinstance(data, dict):
                return data
        except ValueError:
            pass
        time.sleep(0.05)
    return None
