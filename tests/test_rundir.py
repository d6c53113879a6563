"""The run-directory lock: one training per --out; the second writer is told who holds it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from rnnkit.errors import cli_style
from rnnkit.training.rundir import RunLock, RunLockedError

HOLDER = textwrap.dedent(
    """
    import sys
    from rnnkit.training.rundir import RunLock
    with RunLock(sys.argv[1], command="rnnkit train tag --out x"):
        print("held", flush=True)
        sys.stdin.read()
    """
)


def hold(out):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_gets_an_error_naming_the_holder(tmp_path):
    out = tmp_path / "runs" / "x"
    proc = hold(out)
    try:
        info = json.loads((out / ".lock").read_text())
        assert info["pid"] == proc.pid and info["command"] == "rnnkit train tag --out x"
        busy = rf"runs/x is in use by another training \(pid {proc.pid} on host "
        with pytest.raises(RunLockedError, match=busy), RunLock(out):
            pass
        when = r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: rnnkit train tag --out x\); "
        with cli_style(), pytest.raises(ValueError, match=when + "wait for it to finish or choose another --out$"):
            RunLock(out).acquire()
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    with RunLock(out) as lock:  # released when the holder finished
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid() and lock.held


def test_a_killed_holder_leaves_no_lock(tmp_path):
    proc = hold(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    with RunLock(tmp_path), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):  # also within one process
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        pass


def test_the_run_directory_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; give a directory"):
        RunLock(tmp_path / "file").acquire()
