"""What a quality benchmark records beside its metric: the rnnkit commit that ran and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def machine() -> dict:
    """Cores, load and software: measured times are only comparable with these."""
    cpu = ""
    if Path("/proc/cpuinfo").is_file():
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    return {
        "cores": os.cpu_count(),
        "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu": cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def commit() -> str:
    """The rnnkit commit that ran: ``RNNKIT_COMMIT`` when run from a snapshot of it, else ``git rev-parse HEAD``
    (with ``+dirty`` when ``src/`` has uncommitted changes)."""
    if os.environ.get("RNNKIT_COMMIT"):
        return os.environ["RNNKIT_COMMIT"]
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment() -> dict:
    """The commit and the machine, as one record (the ``machine`` field of a result JSON)."""
    return {"rnnkit_commit": commit(), **machine()}
