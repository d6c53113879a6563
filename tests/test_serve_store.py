"""The SQLite stream store: batches read and write atomically, delete, expiry to tombstones, the model check."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from rnnkit.serve.store import SQLiteStore, StreamRecord, open_store, redact


def test_batch_reads_writes_and_rolls_back(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    assert isinstance(store, SQLiteStore)
    with store.batch(["a", "b"]) as b:
        assert b.records == {}
        b.write(StreamRecord("a", 1, 3, b"\x00\x01", b"{}", 1.0, 2.0))
    rec = store.get("a")
    assert (rec.seq, rec.steps, rec.state, rec.updated) == (1, 3, b"\x00\x01", 2.0)
    with pytest.raises(RuntimeError), store.batch(["a"]) as b:
        b.write(StreamRecord("a", 2, 4, b"x", None, 1.0, 3.0))
        raise RuntimeError("the model failed")
    assert store.get("a").seq == 1  # nothing of a failed batch is kept
    assert store.count() == 1 and store.delete("a") and not store.delete("a") and store.count() == 0


def test_batches_of_two_threads_serialise(tmp_path):
    """Read-modify-write of one counter from two threads (two connections) loses no update."""
    store = SQLiteStore(tmp_path / "s.db")

    def bump(n: int) -> None:
        for _ in range(n):
            with store.batch(["c"]) as b:
                rec = b.records.get("c") or StreamRecord("c")
                rec.seq += 1
                b.write(rec)

    threads = [threading.Thread(target=bump, args=(100,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("c").seq == 200


def test_expire_turns_idle_streams_into_tombstones(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    now = time.time()
    with store.batch(["old", "new"]) as b:
        b.write(StreamRecord("old", 1, 1, b"s", b"a", now - 100, now - 100))
        b.write(StreamRecord("new", 1, 1, b"s", b"a", now, now))
    assert store.expire(now - 50) == 1
    old = store.get("old")
    assert old.expired and old.state is None and old.answer is None
    assert store.count() == 1 and store.expire(now - 50) == 0


def test_store_refuses_another_models_streams(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.check_model("abc")
    store.check_model("abc")
    with pytest.raises(ValueError, match="another model"):
        SQLiteStore(tmp_path / "s.db").check_model("xyz")


def test_store_urls(tmp_path):
    with pytest.raises(ValueError, match="unknown store"):
        open_store("redis://x")
    with pytest.raises(ValueError, match="not a directory"):
        open_store(f"sqlite:///{tmp_path}/missing/s.db")
    assert open_store(f"sqlite:///{tmp_path}/n.db?synchronous=normal").synchronous == "normal"
    with pytest.raises(ValueError, match="synchronous"):
        open_store(f"sqlite:///{tmp_path}/n.db?sync=off")
    assert redact("postgresql://me:pw@host/db") == "postgresql://me:***@host/db"


class _FailingDb:
    """A SQLite connection whose next COMMIT (and, with ``rollback``, ROLLBACK) fails as a full disk would."""

    def __init__(self, db: sqlite3.Connection, rollback: bool = False) -> None:
        self.db, self.fail = db, {"COMMIT"} | ({"ROLLBACK"} if rollback else set())

    def execute(self, sql: str, *args):
        if sql in self.fail:
            self.fail.discard(sql)
            raise sqlite3.OperationalError(f"database or disk is full ({sql})")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


@pytest.mark.parametrize("rollback_fails", [False, True])
def test_a_failed_commit_is_rolled_back_and_the_store_keeps_working(tmp_path, rollback_fails):
    store = SQLiteStore(tmp_path / "s.db")
    with store.batch(["a"]) as b:
        b.write(StreamRecord("a", 1, 1, b"s", None, 1.0, 1.0))
    store._local.db = _FailingDb(store._db(), rollback=rollback_fails)
    # the error raised is the COMMIT's, not the ROLLBACK's
    with pytest.raises(sqlite3.OperationalError, match=r"full \(COMMIT\)"), store.batch(["a"]) as b:
        b.write(StreamRecord("a", 2, 2, b"t", None, 1.0, 2.0))
    # the next batches (this thread and another connection) work: no transaction was left open
    with store.batch(["a"]) as b:
        assert b.records["a"].seq == 1  # the failed batch left nothing
        b.write(StreamRecord("a", 2, 2, b"t", None, 1.0, 2.0))
    assert SQLiteStore(tmp_path / "s.db").get("a").seq == 2


def test_live_count_is_kept_without_scanning_the_streams(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    now = time.time()
    with store.batch(["a", "b", "c"]) as b:
        for sid in "abc":
            b.write(StreamRecord(sid, 1, 1, b"s", None, now - 100, now - 100))
    with store.batch(["a", "d"]) as b:
        assert b.live == 3
        b.write(StreamRecord("a", 2, 2, b"s", None, now - 100, now))  # an update: still 3
        b.write(StreamRecord("d", 1, 1, b"s", None, now, now))  # new: 4
    assert store.delete("b") and store.expire(now - 50) == 1  # c idled out
    statements: list[str] = []
    store._db().set_trace_callback(statements.append)
    assert store.count() == 2
    assert not any("rnnkit_streams" in s for s in statements), statements  # /metrics reads a counter, not the table
    store._db().set_trace_callback(None)
    # a store written before the counter existed gets it counted once, when opened
    store._db().execute("DROP TABLE rnnkit_counts")
    assert SQLiteStore(tmp_path / "s.db").count() == 2


def test_purge_removes_old_tombstones_only(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    now = time.time()
    with store.batch(["old", "recent", "live"]) as b:
        b.write(StreamRecord("old", 1, 1, None, None, now - 300, now - 300, expired=True))
        b.write(StreamRecord("recent", 1, 1, None, None, now - 30, now - 30, expired=True))
        b.write(StreamRecord("live", 1, 1, b"s", None, now - 300, now - 300))
    assert store.purge(now - 100) == 1
    assert store.get("old") is None and store.get("recent").expired and store.get("live").state == b"s"
    assert store.count() == 1


def test_redact_hides_passwords_in_the_userinfo_and_the_query():
    assert redact("postgresql://me@host/db?password=pw&sslmode=require") == (
        "postgresql://me@host/db?password=***&sslmode=require"
    )
    assert "pw" not in redact("postgres://host/db?sslmode=require&PASSWORD=pw")
    assert redact("postgresql://me:p%40ss@host/db") == "postgresql://me:***@host/db"


def test_a_store_from_the_first_schema_is_copied_to_a_rowid_table(tmp_path):
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute(
        "CREATE TABLE rnnkit_streams (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, steps INTEGER NOT NULL, state BLOB, "
        "answer BLOB, created REAL NOT NULL, updated REAL NOT NULL, expired INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
    )
    db.execute("INSERT INTO rnnkit_streams VALUES ('a', 3, 5, x'0102', x'7b7d', 1.0, 2.0, 0)")
    db.commit()
    db.close()
    store = SQLiteStore(tmp_path / "s.db")
    rec = store.get("a")
    assert (rec.seq, rec.steps, rec.state, rec.answer, rec.updated) == (3, 5, b"\x01\x02", b"{}", 2.0)
    sql = store._db().execute("SELECT sql FROM sqlite_master WHERE name = 'rnnkit_streams'").fetchone()[0]
    assert "WITHOUT ROWID" not in sql and store.count() == 1


def test_checkpoints_between_batches_keep_the_wal_small(tmp_path):
    """Under a steady stream of batches the WAL must not grow without end (it did: checkpoints beside the writes
    never caught up); maintain() between batches lets it start over."""
    store = SQLiteStore(tmp_path / "s.db")
    state = bytes(1024)
    for k in range(40):
        with store.batch([f"s{i}" for i in range(100)]) as b:
            for i in range(100):
                b.write(StreamRecord(f"s{i}", k + 1, k + 1, state, b"{}", 1.0, 1.0))
        store.maintain()
    # 4,000 rows of a kilobyte went through; the WAL holds about the last checkpoint's worth
    assert (tmp_path / "s.db-wal").stat().st_size < 2_500_000
    assert store.get("s7").seq == 40
