"""Shared fixtures: seeded randomness, tiny sizes, and the real-data directory (skip or fail by CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def data_dir() -> Path:
    """../shared/data (or $RNNKIT_DATA); skips without it, but fails under CI=true where it must exist."""
    root = Path(os.environ.get("RNNKIT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not root.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the data directory {root} is missing (set RNNKIT_DATA)")
        pytest.skip(f"real data not found at {root} (set RNNKIT_DATA)")
    return root
