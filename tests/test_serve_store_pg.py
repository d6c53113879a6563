"""PostgreSQL: the store's locking, and two `rnnkit serve` processes sharing streams (a throwaway cluster)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("psycopg")
httpx = pytest.importorskip("httpx")

from _serve_runs import lm_run, next_token_probs  # noqa: E402
from rnnkit.serve.store import StreamRecord  # noqa: E402
from rnnkit.serve.store_pg import PostgresStore  # noqa: E402
from rnnkit.tasks import load  # noqa: E402
from test_serve_cli import free_port, start_server, stop  # noqa: E402


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A PostgreSQL cluster in a temporary directory, on a Unix socket only; stopped afterwards."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but PostgreSQL's initdb/pg_ctl are not installed (apt-get install postgresql)")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    # PostgreSQL refuses to run as root: run it as the postgres user, in a directory that user owns
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="rnnkit-pg-"))
    data = root / "data"
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        opts = f"-k {root} -c listen_addresses='' -c fsync=off -c max_connections=50"
        run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode()[-500:]}")
    try:
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_pg_batches_serialise_and_roll_back(pg_url):
    store = PostgresStore(pg_url)
    with store.batch(["gone"]) as b:
        b.delete("gone")

    def bump(n: int) -> None:
        for _ in range(n):
            with store.batch(["c", "d"]) as b:  # two streams, locked in one statement
                for sid in ("c", "d"):
                    rec = b.records.get(sid) or StreamRecord(sid)
                    rec.seq += 1
                    b.write(rec)

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("c").seq == 150 and store.get("d").seq == 150
    with pytest.raises(RuntimeError), store.batch(["c"]) as b:
        b.write(StreamRecord("c", 999))
        raise RuntimeError("the model failed")
    assert store.get("c").seq == 150
    store.check_model("m1")
    with pytest.raises(ValueError, match="another model"):
        store.check_model("m2")
    assert store.count() == 2
    assert store.delete("c") and store.delete("d") and store.count() == 0
    with store.batch(["old", "live"]) as b:
        b.write(StreamRecord("old", 1, 1, None, None, 1.0, 1.0, expired=True))
        b.write(StreamRecord("live", 1, 1, b"s", None, 1.0, 1.0))
    assert store.count() == 1 and store.purge(2.0) == 1 and store.get("old") is None
    assert store.expire(2.0) == 1 and store.count() == 0 and store.purge(2.0) == 1
    store.close()
    _reset(pg_url)  # the servers below serve another model


def _reset(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS rnnkit_streams, rnnkit_meta")


def test_two_servers_share_streams(pg_url, tmp_path):
    run = lm_run(tmp_path)
    ports = [free_port(), free_port()]
    servers = [start_server(run, p, "--store", pg_url, "--max-wait-ms", "1") for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    text = "the lazy dog jumps over the quick brown fox"
    try:
        clients = [httpx.Client(base_url=u, timeout=20) for u in urls]
        # one stream, its observations alternating between the two servers
        for seq, ch in enumerate(text, 1):
            r = clients[seq % 2].post("/v1/streams/shared/observe", json={"text": ch, "seq": seq, "top": 3})
            assert r.status_code == 200, r.text
        # a retry at the other server is answered from the store, not stepped again
        retry = clients[len(text) % 2 == 0].post(
            "/v1/streams/shared/observe", json={"text": text[-1], "seq": len(text), "top": 3}
        )
        assert retry.json() == {**r.json(), "replayed": True}
        gap = clients[0].post("/v1/streams/shared/observe", json={"text": "x", "seq": len(text) + 2})
        assert gap.status_code == 409 and gap.json()["expected"] == len(text) + 1

        # concurrent observations of one stream at both servers, without seq: each applied exactly once
        failures: list[str] = []  # collected here: pytest never sees an assert that fails in a thread

        def send(client: httpx.Client, n: int) -> None:
            for _ in range(n):
                try:
                    r = client.post("/v1/streams/busy/observe", json={"text": "a"})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text}")

        senders = [threading.Thread(target=send, args=(c, 25)) for c in clients]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        assert not failures, failures[:3]
        busy = clients[1].post("/v1/streams/busy/observe", json={"text": "a", "seq": 51, "top": 3}).json()
        for c in clients:
            c.close()
    finally:
        for s in servers:
            stop(s)
    task = load(run, "cpu")
    for seen, answer in ((text, r.json()), ("a" * 51, busy)):
        with torch.no_grad():
            logits, _ = task.model(torch.tensor([task.ids(seen)]))
        best = next_token_probs(task, logits[0, -1]).topk(3)
        assert answer["steps"] == len(seen)
        assert [e["p"] for e in answer["answer"]["next"]] == pytest.approx(best.values.tolist(), rel=1e-5)
