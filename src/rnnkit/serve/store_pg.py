"""Streams in PostgreSQL, shared by several ``rnnkit serve`` processes on one machine or many.

A batch locks its streams with transaction-level advisory locks, taken in one statement in sorted key order (so
two servers' batches never wait on each other in a cycle), then reads the records, and writes the new ones in one
``INSERT ... ON CONFLICT`` before ``COMMIT``. A stream is therefore stepped by one server at a time, in the
order the locks were granted, and a state, its sequence number and its answer change together: the same ordering
and exactly-once guarantees as the SQLite store, across servers. Advisory locks also cover streams that do not
exist yet (two servers creating the same stream).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator

from .store import COLUMNS, Batch, Store, StreamRecord, foreign_model_error, redact

#: advisory-lock keys live in this namespace (the first of the two int4 keys), apart from other applications'
LOCK_SPACE = 0x524E4E4B  # "RNNK"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rnnkit_streams (id text PRIMARY KEY, seq bigint NOT NULL, steps bigint NOT NULL, "
    "state bytea, answer bytea, created double precision NOT NULL, updated double precision NOT NULL, "
    "expired boolean NOT NULL DEFAULT false)",
    "DROP INDEX IF EXISTS rnnkit_streams_updated",
    "CREATE INDEX IF NOT EXISTS rnnkit_streams_age ON rnnkit_streams (expired, updated)",
    "CREATE TABLE IF NOT EXISTS rnnkit_meta (key text PRIMARY KEY, value text NOT NULL)",
    # the live streams, counted once (a store from before the counter) and then kept by every batch
    "CREATE TABLE IF NOT EXISTS rnnkit_counts (key text PRIMARY KEY, n bigint NOT NULL)",
    "INSERT INTO rnnkit_counts SELECT 'live', count(*) FROM rnnkit_streams WHERE NOT expired ON CONFLICT DO NOTHING",
)


def lock_key(stream_id: str) -> int:
    """A stable signed 32-bit key for ``stream_id`` (the same on every server)."""
    return int.from_bytes(hashlib.blake2b(stream_id.encode(), digest_size=4).digest(), "big", signed=True)


class PostgresStore(Store):
    """Streams in a PostgreSQL database (psycopg 3; one connection per thread)."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the serve extra brings it
            raise ValueError("a PostgreSQL store needs psycopg: pip install 'rnnkit[serve]'") from exc
        self.url = url
        self._psycopg = psycopg
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()
        with self._tx() as db:
            # one server at a time creates the tables (CREATE ... IF NOT EXISTS races on the catalog otherwise)
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SPACE,))
            for statement in _SCHEMA:
                db.execute(statement)

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None or db.closed:
            try:
                db = self._psycopg.connect(self.url, autocommit=True)
            except self._psycopg.OperationalError as exc:
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                raise ValueError(f"cannot connect to the store {redact(self.url)}: {reason}") from None
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator:
        db = self._db()
        with db.transaction():
            yield db

    def open(self, ids: list[str]) -> Batch:
        keys = sorted({lock_key(i) for i in ids})
        db = self._db()
        db.execute("BEGIN")
        try:
            # sorted keys, one statement: the locks are taken in array order, so batches cannot deadlock
            db.execute(
                "SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%s::int[]) WITH ORDINALITY AS t(k, i)",
                (LOCK_SPACE, keys),
            )
            rows = db.execute(f"SELECT {COLUMNS} FROM rnnkit_streams WHERE id = ANY(%s)", (ids,)).fetchall()
            live = self._live(db)
        except BaseException:
            self._rollback(db)
            raise
        return Batch(
            {r[0]: StreamRecord.from_row(r) for r in rows},
            live,
            flush=lambda b: self._flush(db, b),
            commit=lambda: self._commit(db),
            rollback=lambda: self._rollback(db),
        )

    @staticmethod
    def _flush(db, b: Batch) -> None:
        delta = b.live_delta()
        if delta:  # a row lock until COMMIT: only batches that create or remove streams wait on it
            db.execute("UPDATE rnnkit_counts SET n = n + %s WHERE key = 'live'", (delta,))
        if b.written:
            cols = list(zip(*(r.row() for r in b.written)))
            db.execute(
                f"INSERT INTO rnnkit_streams ({COLUMNS}) SELECT * FROM unnest(%s::text[], %s::bigint[], "
                "%s::bigint[], %s::bytea[], %s::bytea[], %s::float8[], %s::float8[], %s::bool[]) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, steps = excluded.steps, "
                "state = excluded.state, answer = excluded.answer, updated = excluded.updated, "
                "expired = excluded.expired",
                [list(c) for c in cols],
            )
        if b.deleted:
            db.execute("DELETE FROM rnnkit_streams WHERE id = ANY(%s)", (b.deleted,))

    def _commit(self, db) -> None:
        try:
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise

    @staticmethod
    def _rollback(db) -> None:
        """Roll back what is open; a connection that cannot is closed (the next use reopens one). Never raises."""
        try:
            db.execute("ROLLBACK")
        except Exception:
            with contextlib.suppress(Exception):
                db.close()

    def get(self, stream_id: str) -> StreamRecord | None:
        row = self._db().execute(f"SELECT {COLUMNS} FROM rnnkit_streams WHERE id = %s", (stream_id,)).fetchone()
        return None if row is None else StreamRecord.from_row(row)

    def idle(self, before: float, limit: int) -> list[str]:
        rows = self._db().execute(
            "SELECT id FROM rnnkit_streams WHERE updated < %s AND NOT expired LIMIT %s", (before, limit)
        )
        return [r[0] for r in rows]

    def purge(self, before: float, limit: int = 1000) -> int:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM rnnkit_streams WHERE id IN "
                "(SELECT id FROM rnnkit_streams WHERE expired AND updated < %s LIMIT %s) AND expired",
                (before, limit),
            )
            return cur.rowcount

    @staticmethod
    def _live(db) -> int:
        return int(db.execute("SELECT n FROM rnnkit_counts WHERE key = 'live'").fetchone()[0])

    def count(self) -> int:
        return self._live(self._db())

    def check_model(self, fingerprint: str) -> None:
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SPACE,))
            row = db.execute("SELECT value FROM rnnkit_meta WHERE key = 'model'").fetchone()
            if row is None:
                db.execute("INSERT INTO rnnkit_meta VALUES ('model', %s)", (fingerprint,))
            elif row[0] != fingerprint:
                raise foreign_model_error(self.url)

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                with contextlib.suppress(Exception):
                    db.close()
            self._all.clear()
        self._local = threading.local()
