"""`rnnkit serve` as a process: every acknowledged observation survives `kill -9`, and a restart resumes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from _serve_runs import TEXT, lm_run, next_token_probs  # noqa: E402
from rnnkit.tasks import load  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``rnnkit serve`` in a subprocess, once /healthz answers."""
    cmd = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rnnkit serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("rnnkit serve did not start within 60 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kill_9_loses_no_acknowledged_observation(tmp_path):
    run = lm_run(tmp_path)
    text = (TEXT * 2)[:60]
    url = f"http://127.0.0.1:{free_port()}"
    port = int(url.rsplit(":", 1)[1])
    proc = start_server(run, port, "--max-wait-ms", "1")
    acked: list[int] = []
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            for seq in range(1, 21):
                r = c.post("/v1/streams/k/observe", json={"text": text[seq - 1], "seq": seq})
                assert r.status_code == 200
                acked.append(seq)

        def keep_sending() -> None:  # observations in flight when the server dies
            with httpx.Client(base_url=url, timeout=10) as c:
                for seq in range(21, 61):
                    try:
                        r = c.post("/v1/streams/k/observe", json={"text": text[seq - 1], "seq": seq})
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acked.append(seq)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 30 and sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(acked) >= 30, "the server stopped answering before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sender.join()
    finally:
        stop(proc)
    last_acked = max(acked)
    proc = start_server(run, port)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            seen = c.get("/v1/streams/k").json()
            # every acknowledged observation is there; at most the one in flight beyond it
            assert seen["seq"] in (last_acked, last_acked + 1) and seen["steps"] == seen["seq"]
            # resume from the last acknowledged one: a retry of an applied seq is answered from the store
            for seq in range(last_acked + 1, 61):
                r = c.post("/v1/streams/k/observe", json={"text": text[seq - 1], "seq": seq, "top": 3})
                assert r.status_code == 200, r.text
            final = r.json()
    finally:
        stop(proc)
    assert final["steps"] == 60
    # a never-killed run gives the offline answer (test_serve_streaming): so must this one
    task = load(run, "cpu")
    with torch.no_grad():
        logits, _ = task.model(torch.tensor([task.ids(text)]))
    best = next_token_probs(task, logits[0, -1]).topk(3)
    assert [e["token"] for e in final["answer"]["next"]] == [task.vocab.itos[int(i)] for i in best.indices]
    assert [e["p"] for e in final["answer"]["next"]] == pytest.approx(best.values.tolist(), rel=1e-5)


def test_api_key_from_the_environment(tmp_path):
    run = lm_run(tmp_path)
    port = free_port()
    proc = start_server(run, port, "--api-key-env", "RNNKIT_TEST_KEY", env={"RNNKIT_TEST_KEY": "k3y"})
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/v1/model").status_code == 401
        assert httpx.get(f"{base}/v1/model", headers={"Authorization": "Bearer k3y"}).status_code == 200
    finally:
        stop(proc)


def test_cli_errors_name_flags(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from rnnkit.cli import app

    run = lm_run(tmp_path)
    monkeypatch.delenv("RNNKIT_UNSET_KEY", raising=False)
    runner = CliRunner()
    out = runner.invoke(app, ["serve", str(run), "--api-key-env", "RNNKIT_UNSET_KEY"])
    assert out.exit_code == 1 and "--api-key-env RNNKIT_UNSET_KEY" in out.output
    out = runner.invoke(app, ["serve", str(run), "--max-batch", "0"])
    assert out.exit_code == 1 and "--max-batch must be >= 1" in out.output
    out = runner.invoke(app, ["serve", str(run), "--max-streams", "-1"])
    assert out.exit_code == 1 and "--max-streams must be >= 0" in out.output
    out = runner.invoke(app, ["serve", str(run), "--tombstone-ttl", "-1"])
    assert out.exit_code == 1 and "--tombstone-ttl must be >= 0" in out.output
    out = runner.invoke(app, ["serve", str(run), "--predict-threads", "0"])
    assert out.exit_code == 1 and "--predict-threads must be >= 1" in out.output
    out = runner.invoke(app, ["serve", str(tmp_path / "nothing")])
    assert out.exit_code == 1


def test_uvicorn_gets_a_connection_bound(tmp_path, monkeypatch):
    import json

    import uvicorn
    from typer.testing import CliRunner

    from rnnkit.cli import app
    from rnnkit.serve.app import CONFIG_ENV

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    run = lm_run(tmp_path)
    out = CliRunner().invoke(app, ["serve", str(run), "--max-connections", "77", "--stream-queue", "5"])
    assert out.exit_code == 0, out.output
    assert seen["limit_concurrency"] == 77  # beyond it uvicorn answers 503 instead of taking every connection
    shared = json.loads(os.environ[CONFIG_ENV])
    assert shared["stream_queue"] == 5 and shared["limits"]["max_chunk"] == 256  # what each worker is built from
    os.environ.pop(CONFIG_ENV)
    out = CliRunner().invoke(app, ["serve", str(run), "--max-connections", "0"])
    assert out.exit_code == 1 and "--max-connections must be >= 1" in out.output
