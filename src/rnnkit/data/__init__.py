"""Data: synthetic memory tasks, time-series windows, text vocabularies, readers and batching."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where the real datasets are: ``$RNNKIT_DATA``, else ``../shared/data`` (from the working directory).

    Nothing is downloaded at run time; benchmarks and tests read from here.
    """
    return Path(os.environ.get("RNNKIT_DATA", "../shared/data"))
