"""Shared fixtures: seeded randomness, tiny sizes, and the real-data directory (skip or fail by CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from rnnkit import _ext

# The tests' models are tiny: a second thread buys nothing and, on a busy machine, makes torch's threads wait on
# each other (a 3 ms step took 350 ms with two threads under load).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _data_root() -> Path:
    """$RNNKIT_DATA or ../shared/data next to the project; skips without it, but fails under CI=true."""
    root = Path(os.environ.get("RNNKIT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not root.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the data directory {root} is missing (set RNNKIT_DATA)")
        pytest.skip(f"real data not found at {root} (set RNNKIT_DATA)")
    return root


@pytest.fixture
def data_dir() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def slices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small slices of ../shared/data written to a temp dir (the data itself is never copied into the repo)."""
    import gzip

    root = _data_root()
    out = tmp_path_factory.mktemp("slices")
    for side in ("pos", "neg"):
        lines = [ln for ln in (root / "mr_polarity" / f"rt-polarity.{side}").read_bytes().split(b"\n") if ln.strip()]
        (out / f"mr.{side}").write_bytes(b"\n".join(lines[:200]) + b"\n")
        (out / f"mr_test.{side}").write_bytes(b"\n".join(lines[-50:]))
    for part, n in (("train", 200), ("valid", 60), ("test", 60)):
        blocks = (root / "conll2003" / f"{part}.txt").read_text().split("\n\n")[:n]
        (out / f"{part}.conll").write_text("\n\n".join(blocks) + "\n")
    for part, n in (("train", 400), ("val", 40)):
        for side in ("de", "en"):
            with gzip.open(root / "multi30k_de_en" / f"{part}.{side}.gz", "rt", encoding="utf-8") as fh:
                (out / f"{part}.{side}").write_text("".join(next(fh) for _ in range(n)))
    (out / "shakespeare.txt").write_text((root / "tinyshakespeare" / "input.txt").read_text()[:30000])
    lines = (root / "ett_small" / "ETTh1.csv").read_text().splitlines()
    (out / "etth1.csv").write_text("\n".join(lines[:1201]) + "\n")
    return {p.name: p for p in out.iterdir()}


@pytest.fixture(scope="session")
def adding_lstm():
    """An LSTM (H=32) trained on the adding problem at T=50 (tests/_adding.py), shared by test_learning and
    test_horizon and trained once per session: Adam at 2e-2 until a validation set's MSE is below 0.005 (half the
    0.01 the tests assert on other sequences), at most 1200 updates."""
    from _adding import train_adding

    return train_adding("lstm", 50, 1200, stop_below=0.005, lr=2e-2)


@pytest.fixture
def kernels() -> None:
    """Skip where the C++ kernels cannot be built, but fail where they are required (RNNKIT_REQUIRE_KERNELS, CI)."""
    status = _ext.status()
    if not status["built"]:
        if status["required"] or os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the C++ kernels are required here but were not built: {status['reason']}")
        pytest.skip(f"C++ kernels not built on this machine: {status['reason']}")
