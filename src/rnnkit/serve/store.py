"""Where streams live between observations: one record per stream, read and written a batch at a time.

A :class:`Store` hands out :meth:`Store.batch` transactions: the records of a set of streams, locked against
every other batch (in this process or another server) until the transaction commits. The batch's new records are
written in the same transaction, so a stream's state, its sequence number and the answer it gave change together
or not at all (what makes retries exactly-once and acknowledged updates durable).

:class:`SQLiteStore` (here) is the embedded default: WAL journal, ``synchronous=FULL``, one writer at a time.
:class:`rnnkit.serve.store_pg.PostgresStore` lets several servers share the streams.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Batch", "SQLiteStore", "Store", "StreamRecord", "model_fingerprint", "open_store"]

log = logging.getLogger("rnnkit.serve")

#: rows committed between two WAL checkpoints (a few MB of WAL for kilobyte states)
CHECKPOINT_ROWS = 1000

_SQLITE_TABLE = (
    "CREATE TABLE rnnkit_streams (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, steps INTEGER NOT NULL, state BLOB, "
    "answer BLOB, created REAL NOT NULL, updated REAL NOT NULL, expired INTEGER NOT NULL DEFAULT 0)"
)

#: columns of a stream record, in the order the stores select them
COLUMNS = "id, seq, steps, state, answer, created, updated, expired"


@dataclass
class StreamRecord:
    """One stream.

    Attributes:
        id: the stream id.
        seq: observe calls applied so far (the next call's ``seq`` is ``seq + 1``).
        steps: observations applied so far (a chunk counts each of its observations).
        state: what the model carries (an RNN state or a window of rows), encoded by the streamer.
        answer: the JSON of the last answer, returned again to a retry of call ``seq``.
        created, updated: Unix times of the first and the last update.
        expired: the stream idled past the TTL; its state is gone and the next observe says so.
    """

    id: str
    seq: int = 0
    steps: int = 0
    state: bytes | None = None
    answer: bytes | None = None
    created: float = 0.0
    updated: float = 0.0
    expired: bool = False

    @classmethod
    def from_row(cls, row: tuple) -> StreamRecord:
        sid, seq, steps, state, answer, created, updated, expired = row
        return cls(
            sid,
            int(seq),
            int(steps),
            None if state is None else bytes(state),
            None if answer is None else bytes(answer),
            float(created),
            float(updated),
            bool(expired),
        )

    def row(self) -> tuple:
        return (self.id, self.seq, self.steps, self.state, self.answer, self.created, self.updated, self.expired)


class Batch:
    """An open transaction over some streams: ``records`` (the existing ones, by id) and ``live`` (the live
    streams in the store when it began), then :meth:`write` and :meth:`delete`, then :meth:`flush` (the writes are
    sent, not yet durable) and :meth:`commit`, or :meth:`rollback`.

    ``commit`` may run on another thread than the rest (the server waits for the disk there, not on its event
    loop); nothing else uses the batch's connection meanwhile."""

    def __init__(
        self,
        records: dict[str, StreamRecord],
        live: int = 0,
        *,
        flush: Callable[[Batch], None] | None = None,
        commit: Callable[[], None] | None = None,
        rollback: Callable[[], None] | None = None,
    ) -> None:
        self.records, self.live = records, live
        self.written: list[StreamRecord] = []
        self.deleted: list[str] = []
        self._was_live = {sid for sid, rec in records.items() if not rec.expired}
        self._is_live: dict[str, bool] = {}
        self._flush, self._commit, self._rollback = flush, commit, rollback

    def flush(self) -> None:
        """Send the writes (inside the transaction)."""
        if self._flush is not None:
            self._flush(self)

    def commit(self) -> None:
        """Make the flushed writes durable; on failure the transaction is rolled back and the error raised."""
        if self._commit is not None:
            self._commit()

    def rollback(self) -> None:
        """Drop the transaction (never raises: a connection that cannot roll back is closed)."""
        if self._rollback is not None:
            self._rollback()

    def write(self, record: StreamRecord) -> None:
        """Store ``record`` when the transaction commits."""
        self.written.append(record)
        self._is_live[record.id] = not record.expired

    def delete(self, stream_id: str) -> None:
        """Remove a stream when the transaction commits."""
        self.deleted.append(stream_id)
        self._is_live[stream_id] = False

    def live_delta(self) -> int:
        """How the number of live streams changes when this batch commits."""
        return sum(int(now) - int(sid in self._was_live) for sid, now in self._is_live.items())


class Store:
    """The interface both stores implement (thread-safe: each thread gets its own connection)."""

    url: str

    def open(self, ids: list[str]) -> Batch:
        """Begin a transaction that locks the streams ``ids`` and read their records."""
        raise NotImplementedError

    @contextlib.contextmanager
    def batch(self, ids: list[str]) -> Iterator[Batch]:
        """Lock the streams ``ids`` (one transaction), yield their records, write and commit what the batch wrote
        (nothing of it if the block raises)."""
        b = self.open(ids)
        try:
            yield b
            b.flush()
        except BaseException:
            b.rollback()
            raise
        b.commit()

    def get(self, stream_id: str) -> StreamRecord | None:
        raise NotImplementedError

    def delete(self, stream_id: str) -> bool:
        """Remove a stream (waits for a batch holding it); True if it existed."""
        with self.batch([stream_id]) as b:
            if stream_id in b.records:
                b.delete(stream_id)
                return True
            return False

    def expire(self, before: float, limit: int = 1000) -> int:
        """Turn up to ``limit`` streams last updated before ``before`` into tombstones (state dropped); returns how
        many. Done under the streams' locks, like any batch."""
        ids = self.idle(before, limit)
        if not ids:
            return 0
        n = 0
        with self.batch(ids) as b:
            for rec in b.records.values():
                if not rec.expired and rec.updated < before:
                    rec.state, rec.answer, rec.expired = None, None, True
                    b.write(rec)
                    n += 1
        return n

    def idle(self, before: float, limit: int) -> list[str]:
        """Ids of live streams last updated before ``before`` (at most ``limit``)."""
        raise NotImplementedError

    def purge(self, before: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` tombstones last updated before ``before`` (after that an old stream id is simply
        unknown); returns how many."""
        raise NotImplementedError

    def count(self) -> int:
        """Live (not expired) streams: a counter kept by every batch, not a scan (cheap enough for each scrape)."""
        raise NotImplementedError

    def check_model(self, fingerprint: str) -> None:
        """Remember which model the states belong to; refuse a store made for another model."""
        raise NotImplementedError

    #: whether :meth:`maintain` has work to do
    due = False

    def maintain(self) -> None:
        """Housekeeping between batches (the server calls it off its event loop when :attr:`due`)."""

    def close(self) -> None:
        raise NotImplementedError


def model_fingerprint(model_dir: Path) -> str:
    """A hash of the served weights and config: states of one model are meaningless to another."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = model_dir / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:32]


def foreign_model_error(url: str) -> ValueError:
    return ValueError(
        f"the store {redact(url)} holds streams of another model; give this model its own store (--store), "
        "or delete that one"
    )


def redact(url: str) -> str:
    """``url`` without a password, in the user part or a ``password=`` parameter (for messages and logs)."""
    base, mark, query = url.partition("?")
    if "://" in base and "@" in base.split("://", 1)[1]:
        scheme, rest = base.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        base = f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else base
    if query:
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", query)
    return base + mark + query


class SQLiteStore(Store):
    """Streams in one SQLite file: WAL journal, every commit synced to disk (``synchronous=FULL``), so an
    acknowledged update survives a crash of the server and of the machine. ``synchronous="normal"`` (URL
    ``sqlite:///path.db?synchronous=normal``) skips the per-commit fsync: updates still survive a crash of the
    server (the OS has them), not a power cut. Writers queue on one lock (``BEGIN IMMEDIATE``), which is what
    orders the batches of several worker processes on one file."""

    def __init__(self, path: str | Path, timeout: float = 30.0, synchronous: str = "full") -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.timeout = timeout
        if synchronous not in ("full", "normal"):
            raise ValueError(f"sqlite store: synchronous must be 'full' or 'normal', got {synchronous!r}")
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if not self.path.parent.is_dir():
            raise ValueError(f"cannot create the stream store {self.path}: {self.path.parent} is not a directory")
        self._unchecked = 0  # rows committed since the last checkpoint
        self._closed: set[Any] = set()  # connections closed after a failed ROLLBACK: their threads reopen one
        with self._tx() as db:
            # a rowid table: a state of a kilobyte or more would overflow a WITHOUT ROWID table's b-tree cells
            # (measured: 4x the time per batch); the first stores were WITHOUT ROWID and are copied over once
            old = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'rnnkit_streams'")
            if "WITHOUT ROWID" in ((old.fetchone() or [""])[0] or "").upper():
                db.execute("ALTER TABLE rnnkit_streams RENAME TO rnnkit_streams_old")
                db.execute(_SQLITE_TABLE)
                db.execute(f"INSERT INTO rnnkit_streams ({COLUMNS}) SELECT {COLUMNS} FROM rnnkit_streams_old")
                db.execute("DROP TABLE rnnkit_streams_old")
            db.execute(_SQLITE_TABLE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
            # the sweeps look for live streams (expire) and tombstones (purge) by age
            db.execute("DROP INDEX IF EXISTS rnnkit_streams_updated")
            db.execute("CREATE INDEX IF NOT EXISTS rnnkit_streams_age ON rnnkit_streams (expired, updated)")
            db.execute("CREATE TABLE IF NOT EXISTS rnnkit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            # the live streams, counted once (a store from before the counter) and then kept by every batch
            db.execute("CREATE TABLE IF NOT EXISTS rnnkit_counts (key TEXT PRIMARY KEY, n INTEGER NOT NULL)")
            db.execute(
                "INSERT OR IGNORE INTO rnnkit_counts SELECT 'live', count(*) FROM rnnkit_streams WHERE expired = 0"
            )

    @property
    def due(self) -> bool:
        return self._unchecked >= CHECKPOINT_ROWS

    def maintain(self) -> None:
        """Copy the WAL into the database (a PASSIVE checkpoint) once enough rows were committed. Run between
        batches, by the one writer of this process: the checkpoint then catches up with the WAL, and the next
        write starts it over. (Checkpoints running beside a stream of writes never catch up: the WAL grew by
        about 75 MB/s under load.)"""
        if not self.due:
            return
        self._unchecked = 0
        with contextlib.suppress(sqlite3.Error):  # busy now: the next round catches up
            self._db().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or db in self._closed:
            # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            # no checkpoint inside a batch's commit (it copies the WAL into the database and syncs it: the
            # batch's answers would wait for it): maintain() does it between batches
            db.execute("PRAGMA wal_autocheckpoint=0")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # take the write lock now: the records read below cannot change under us
        try:
            yield db
        except BaseException:
            self._rollback(db)
            raise
        self._commit(db)

    def _commit(self, db: sqlite3.Connection, rows: int = 1) -> None:
        try:
            db.execute("COMMIT")  # a full disk or an I/O error can fail the COMMIT itself: roll back then
        except BaseException:
            self._rollback(db)
            raise
        self._unchecked += rows

    def _rollback(self, db: sqlite3.Connection) -> None:
        """Roll back what is open; if even that fails, close the connection (closing rolls back) so that its
        thread opens a new one. Never raises: the error that led here is the one to report."""
        if not db.in_transaction:
            return
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("sqlite store: ROLLBACK failed; reopening the connection", exc_info=True)
            with contextlib.suppress(sqlite3.Error):
                db.close()
            with self._lock:
                self._closed.add(db)

    def open(self, ids: list[str]) -> Batch:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # take the write lock now: the records read below cannot change under us
        try:
            records: dict[str, StreamRecord] = {}
            for i in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                for row in db.execute(f"SELECT {COLUMNS} FROM rnnkit_streams WHERE id IN ({marks})", part):
                    rec = StreamRecord.from_row(row)
                    records[rec.id] = rec
            live = self._live(db)
        except BaseException:
            self._rollback(db)
            raise
        return Batch(
            records,
            live,
            flush=lambda b: self._flush(db, b),
            commit=lambda: self._commit(db, len(ids)),
            rollback=lambda: self._rollback(db),
        )

    @staticmethod
    def _flush(db: sqlite3.Connection, b: Batch) -> None:
        delta = b.live_delta()
        if delta:
            db.execute("UPDATE rnnkit_counts SET n = n + ? WHERE key = 'live'", (delta,))
        if b.written:
            db.executemany(
                f"INSERT INTO rnnkit_streams ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
                "UPDATE SET seq=excluded.seq, steps=excluded.steps, state=excluded.state, "
                "answer=excluded.answer, updated=excluded.updated, expired=excluded.expired",
                [r.row() for r in b.written],
            )
        if b.deleted:
            db.executemany("DELETE FROM rnnkit_streams WHERE id = ?", [(i,) for i in b.deleted])

    def get(self, stream_id: str) -> StreamRecord | None:
        row = self._db().execute(f"SELECT {COLUMNS} FROM rnnkit_streams WHERE id = ?", (stream_id,)).fetchone()
        return None if row is None else StreamRecord.from_row(row)

    def idle(self, before: float, limit: int) -> list[str]:
        rows = self._db().execute(
            "SELECT id FROM rnnkit_streams WHERE expired = 0 AND updated < ? LIMIT ?", (before, limit)
        )
        return [r[0] for r in rows]

    def purge(self, before: float, limit: int = 1000) -> int:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM rnnkit_streams WHERE id IN "
                "(SELECT id FROM rnnkit_streams WHERE expired = 1 AND updated < ? LIMIT ?)",
                (before, limit),
            )
            return cur.rowcount

    @staticmethod
    def _live(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT n FROM rnnkit_counts WHERE key = 'live'").fetchone()[0])

    def count(self) -> int:
        return self._live(self._db())

    def check_model(self, fingerprint: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM rnnkit_meta WHERE key = 'model'").fetchone()
            if row is None:
                db.execute("INSERT INTO rnnkit_meta VALUES ('model', ?)", (fingerprint,))
            elif row[0] != fingerprint:
                raise foreign_model_error(self.url)

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._all.clear()
        self._local = threading.local()


def open_store(url: str) -> Store:
    """The store at ``url``: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (``?synchronous=normal``
    to skip the per-commit fsync) or
    ``postgresql://user@host/db`` (also ``postgres://``)."""
    if url.startswith("sqlite:///"):
        path, _, query = url[len("sqlite:///") :].partition("?")
        options = dict(p.partition("=")[::2] for p in query.split("&") if p)
        unknown = sorted(set(options) - {"synchronous"})
        if unknown:
            raise ValueError(f"unknown sqlite store option(s) {unknown}; the one option is synchronous=full|normal")
        return SQLiteStore(path, synchronous=options.get("synchronous", "full").lower())
    if url.startswith(("postgresql://", "postgres://")):
        from .store_pg import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unknown store {redact(url)!r}; expected sqlite:///path/streams.db or postgresql://user@host/dbname"
    )


def now() -> float:
    return time.time()
