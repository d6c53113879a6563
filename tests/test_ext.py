"""The C++ kernel build: keyed by the sources (not where they live), never waits forever on a lock, and a build
that must not fail (RNNKIT_REQUIRE_KERNELS=1, as in CI) raises instead of falling back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from rnnkit import _ext

CSRC = Path(_ext.__file__).parent / "csrc"
BROKEN = "Error building extension 'rnnkit_kernels'\nkernels.h:1:1: error: no compiler today"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A first load in an empty extensions root; this process's real result comes back afterwards."""
    monkeypatch.setattr(_ext, "_RESULT", None)
    monkeypatch.setattr(_ext, "_WARNED", False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "extensions"))
    for var in ("RNNKIT_NO_EXT", "RNNKIT_REQUIRE_KERNELS", "RNNKIT_KERNEL_LOCK_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter; the timeout turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-c", code], env=os.environ | env, capture_output=True, text=True, timeout=180
    )


def test_cache_key_is_the_same_for_the_same_sources_in_any_checkout(tmp_path):
    one = shutil.copytree(CSRC, tmp_path / "checkout1" / "csrc")
    two = shutil.copytree(CSRC, tmp_path / "elsewhere" / "checkout2" / "src" / "rnnkit" / "csrc")
    assert _ext.cache_key(one) == _ext.cache_key(two) == _ext.cache_key(CSRC)


@pytest.mark.parametrize("changed", [p.name for p in _ext.source_files(CSRC)])
def test_cache_key_changes_with_every_source_file_headers_included(tmp_path, changed):
    src = shutil.copytree(CSRC, tmp_path / "csrc")
    before = _ext.cache_key(src, torch_version="2.13.0+cpu")
    path = src / changed
    path.write_bytes(path.read_bytes() + b"\n// one more line\n")
    assert _ext.cache_key(src, torch_version="2.13.0+cpu") != before


def test_cache_key_changes_with_torch_cpu_and_flags():
    key = _ext.cache_key(CSRC, torch_version="2.13.0+cpu", cpu="abc")
    assert _ext.cache_key(CSRC, torch_version="2.13.0+cpu", cpu="abc") == key
    assert _ext.cache_key(CSRC, torch_version="2.13.1+cpu", cpu="abc") != key
    assert _ext.cache_key(CSRC, torch_version="2.13.0+cpu", cpu="xyz") != key
    assert _ext.cache_key(CSRC, torch_version="2.13.0+cpu", cpu="abc", flags=["-O2"]) != key


def test_build_directory_is_named_by_the_key_under_torch_extensions_dir(fresh):
    name, build_dir = _ext.build_directory("native")
    assert build_dir == fresh / "extensions" / name
    assert name.endswith(_ext.cache_key(CSRC))


def test_build_compiles_copies_of_every_source_in_the_build_directory(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(_ext, "_torch_build", lambda **kw: calls.append(kw) or "module")
    assert _ext.load() == "module"
    (kwargs,) = calls
    build_dir = Path(kwargs["build_directory"])
    assert build_dir == _ext.build_directory("native")[1]
    assert sorted(p.name for p in (build_dir / "src").iterdir()) == [p.name for p in _ext.source_files(CSRC)]
    assert sorted(Path(s).name for s in kwargs["sources"]) == sorted(p.name for p in CSRC.glob("*.cpp"))
    assert all(Path(s).parent == build_dir / "src" for s in kwargs["sources"])
    assert _ext.status() == {
        "built": True,
        "name": kwargs["name"],
        "build_dir": str(build_dir),
        "variant": "native",
        "reason": None,
        "required": False,
    }


@pytest.mark.parametrize("required", [True, False])
def test_a_held_build_lock_times_out_with_a_message_naming_it(fresh, required):
    fcntl = pytest.importorskip("fcntl")
    _, build_dir = _ext.build_directory("native")
    build_dir.mkdir(parents=True)
    lock = build_dir / "rnnkit.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is building, or hung while building
        start = time.monotonic()
        env = {"RNNKIT_KERNEL_LOCK_TIMEOUT": "1"} | ({"RNNKIT_REQUIRE_KERNELS": "1"} if required else {})
        proc = run_python("from rnnkit import _ext; print('module:', _ext.load())", **env)
        elapsed = time.monotonic() - start
    assert str(lock) in proc.stderr, proc.stderr
    assert "RNNKIT_KERNEL_LOCK_TIMEOUT" in proc.stderr
    if required:
        assert proc.returncode != 0 and "RuntimeError" in proc.stderr
    else:
        assert proc.returncode == 0 and "module: None" in proc.stdout, proc.stderr
    assert elapsed < 120


STALE_BATON = """
import os, types, warnings
from torch.utils.file_baton import FileBaton
from rnnkit import _ext

def build(name, sources, extra_cflags, build_directory):
    baton = FileBaton(os.path.join(build_directory, "lock"))  # exactly what cpp_extension.load does
    if baton.try_acquire():
        baton.release()
    else:
        baton.wait()  # forever, if the killed build's lock were still there
    return types.SimpleNamespace(name=name)

_ext._torch_build = build
warnings.simplefilter("always")
print("module:", _ext.load())
"""


def test_a_lock_left_by_a_killed_build_is_removed_not_waited_on(fresh):
    _, build_dir = _ext.build_directory("native")
    build_dir.mkdir(parents=True)
    baton = build_dir / "lock"
    baton.touch()
    os.utime(baton, (time.time() - 3600, time.time() - 3600))  # left an hour ago by a build that was killed
    proc = run_python(STALE_BATON, RNNKIT_KERNEL_LOCK_TIMEOUT="5")
    assert proc.returncode == 0, proc.stderr
    assert "module: namespace(name='rnnkit_kernels_native_" in proc.stdout
    assert f"removed {baton}" in proc.stderr
    assert not baton.exists()


def test_required_kernels_raise_when_the_build_fails(fresh, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError(BROKEN)

    monkeypatch.setattr(_ext, "_torch_build", broken)
    monkeypatch.setenv("RNNKIT_REQUIRE_KERNELS", "1")
    with pytest.raises(RuntimeError, match="RNNKIT_REQUIRE_KERNELS=1 .* no compiler today"):
        _ext.load()
    status = _ext.status()
    assert status["built"] is False and status["required"] is True
    assert "no compiler today" in status["reason"]


def test_a_failed_build_warns_once_and_falls_back(fresh, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError(BROKEN)

    monkeypatch.setattr(_ext, "_torch_build", broken)
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        assert _ext.load() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _ext.load() is None


def test_no_ext_skips_quietly_but_contradicts_require(fresh, monkeypatch):
    monkeypatch.setenv("RNNKIT_NO_EXT", "1")
    monkeypatch.setattr(_ext, "_torch_build", lambda **kw: pytest.fail("RNNKIT_NO_EXT=1 must not build"))
    assert _ext.load() is None
    assert _ext.status()["reason"] == "disabled by RNNKIT_NO_EXT"
    monkeypatch.setenv("RNNKIT_REQUIRE_KERNELS", "1")
    with pytest.raises(RuntimeError, match="contradict"):
        _ext.load()
    assert "contradict" in _ext.status()["reason"]
