"""One batch of observations, end to end: lock and read the streams, check sequence numbers and expiry, step the
model once for all of them, write the new states and answers, commit. Then (only then) the answers go out."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .schemas import ObserveRequest
from .store import Batch, Store, StreamRecord
from .streaming import RawJSON, RequestError, Streamer


@dataclass
class Observation:
    """An observe request, parsed: the stream, its optional ``seq``, the model inputs and how many steps."""

    stream: str
    seq: int | None
    inputs: Any
    steps: int
    request: ObserveRequest


class Outcome:
    """The HTTP status and JSON body answering one observation, as a dict or already serialised (``raw``; each is
    made from the other when first asked for); ``applied``: observations this answer applied (0 for a replay)."""

    __slots__ = ("_body", "_raw", "applied", "status")

    def __init__(self, status: int, body: dict[str, Any] | None = None, raw: bytes | None = None, applied: int = 0):
        self.status, self._body, self._raw, self.applied = status, body, raw, applied

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = json.loads(self._raw or b"{}")
        return self._body

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = json.dumps(self._body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        return self._raw

    def __repr__(self) -> str:
        return f"Outcome({self.status}, {self.body!r})"


def error(status: int, detail: str, field: str | None = None, **extra: Any) -> Outcome:
    return Outcome(status, {"detail": detail, "field": field, **extra})


def _replay(stored: bytes, replayed: bool) -> bytes:
    """A stored answer (a JSON object) with ``"replayed"`` added."""
    return stored[: stored.rindex(b"}")] + (b',"replayed":true}' if replayed else b',"replayed":false}')


class Engine:
    """Runs batches (at most one observation per stream) against a store; thread-safe as the store is."""

    def __init__(self, streamer: Streamer, store: Store, *, idle_ttl: float = 0.0, max_streams: int = 0) -> None:
        self.streamer, self.store, self.idle_ttl, self.max_streams = streamer, store, idle_ttl, max_streams

    def expired(self, rec: StreamRecord, now: float) -> bool:
        return rec.expired or (self.idle_ttl > 0 and rec.updated < now - self.idle_ttl)

    def expired_message(self, stream: str) -> str:
        return (
            f"stream {stream!r} expired after {self.idle_ttl:g} s without observations (--idle-ttl) and its state "
            "is gone; observe it again (from seq 1) to start it anew"
        )

    def full_message(self) -> str:
        return (
            f"the server keeps at most {self.max_streams} streams (--max-streams) and has that many; delete "
            "finished streams (DELETE /v1/streams/{id}) or retry once idle ones expire"
        )

    def run(self, items: list[Observation]) -> list[Outcome]:
        """Answer each observation; every state change is committed before this returns."""
        outcomes, batch = self.prepare(items)
        batch.commit()
        return outcomes

    def prepare(self, items: list[Observation]) -> tuple[list[Outcome], Batch]:
        """Everything :meth:`run` does but the COMMIT: the answers and the open, flushed batch. Send no answer
        before ``batch.commit()`` returned (a failed commit applied nothing)."""
        batch = self.store.open([it.stream for it in items])
        try:
            outcomes = self._answer(items, batch)
            batch.flush()
        except BaseException:
            batch.rollback()
            raise
        return outcomes, batch

    def _answer(self, items: list[Observation], batch: Batch) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        now = time.time()
        room = self.max_streams - batch.live if self.max_streams else len(items)  # new streams allowed
        todo: list[tuple[int, Observation, StreamRecord | None]] = []
        for k, it in enumerate(items):
            rec = batch.records.get(it.stream)
            if rec is not None and self.expired(rec, now):
                batch.delete(it.stream)  # said once: the next observe starts the stream anew
                outcomes[k] = error(404, self.expired_message(it.stream), "stream")
                continue
            last = rec.seq if rec is not None else 0
            if it.seq is not None and it.seq != last + 1:
                if it.seq == last and rec is not None and rec.answer is not None:
                    outcomes[k] = Outcome(200, raw=_replay(rec.answer, True))
                else:
                    why = "was already applied" if it.seq < last else "skips calls"
                    outcomes[k] = error(
                        409,
                        f"seq {it.seq} {why}: stream {it.stream!r} expects seq {last + 1}",
                        "seq",
                        expected=last + 1,
                    )
                continue
            if rec is None:
                if room <= 0:
                    outcomes[k] = error(429, self.full_message(), "stream")
                    continue
                room -= 1
            todo.append((k, it, rec))
        if todo:
            results = self.streamer.step(
                [r.state if r is not None else None for _, _, r in todo],
                [it.inputs for _, it, _ in todo],
                [it.request for _, it, _ in todo],
            )
            for (k, it, rec), result in zip(todo, results):
                if isinstance(result, RequestError):
                    outcomes[k] = error(result.status, str(result), result.field)
                    continue
                state, answer = result
                new = StreamRecord(
                    it.stream,
                    (rec.seq if rec else 0) + 1,
                    (rec.steps if rec else 0) + it.steps,
                    state,
                    None,
                    rec.created if rec else now,
                    now,
                )
                if not isinstance(answer, RawJSON):
                    answer = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
                new.answer = b'{"stream":%s,"seq":%d,"steps":%d,"answer":%s}' % (
                    json.dumps(it.stream).encode(),
                    new.seq,
                    new.steps,
                    answer,
                )
                batch.write(new)
                outcomes[k] = Outcome(200, raw=_replay(new.answer, False), applied=it.steps)
        return outcomes  # type: ignore[return-value]
