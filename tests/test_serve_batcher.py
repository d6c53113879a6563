"""Micro-batching: streams share batches, one stream never twice in a batch, a stream's observations in order."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time

import pytest
import torch

pytest.importorskip("fastapi")

from _serve_runs import TEXT, lm_run, next_token_probs
from rnnkit.serve.batcher import Batcher
from rnnkit.serve.engine import Engine, Observation, Outcome
from rnnkit.serve.schemas import ObserveRequest
from rnnkit.serve.store import Batch, SQLiteStore
from rnnkit.serve.streaming import streamer_for
from rnnkit.tasks import load


class Recorder:
    """An engine that records its batches."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def run(self, items: list[Observation]) -> list[Outcome]:
        self.batches.append([it.stream for it in items])
        return [Outcome(200, {"stream": it.stream, "value": it.inputs}) for it in items]

    def prepare(self, items: list[Observation]) -> tuple[list[Outcome], Batch]:
        return self.run(items), Batch({})


def _obs(stream: str, value: object = None) -> Observation:
    return Observation(stream, None, value, 1, ObserveRequest(token="a"))


def test_streams_share_batches_up_to_max_batch():
    async def main() -> list[list[str]]:
        engine = Recorder()
        b = Batcher(engine, max_batch=64, max_wait_ms=50)  # type: ignore[arg-type]
        await b.start()
        answers = await asyncio.gather(*(b.submit(_obs(f"s{i}", i)) for i in range(100)))
        await b.stop()
        assert [a.body["value"] for a in answers] == list(range(100))
        return engine.batches

    batches = asyncio.run(main())
    assert [len(x) for x in batches] == [64, 36]


def test_one_stream_never_twice_in_a_batch_and_in_arrival_order():
    async def main() -> tuple[list[list[str]], list[Outcome]]:
        engine = Recorder()
        b = Batcher(engine, max_batch=16, max_wait_ms=5)  # type: ignore[arg-type]
        await b.start()
        jobs = [b.submit(_obs("a" if i % 2 else f"s{i}", i)) for i in range(50)]
        answers = await asyncio.gather(*jobs)
        await b.stop()
        return engine.batches, answers

    batches, answers = asyncio.run(main())
    assert all(len(set(x)) == len(x) for x in batches)
    assert sum(x.count("a") for x in batches) == 25 and len(batches) >= 25
    assert [a.body["value"] for a in answers] == list(range(50))


@pytest.mark.parametrize("inline", [False, True])
def test_fifty_concurrent_observations_of_one_stream_apply_in_order(tmp_path, inline):
    """50 concurrent observations of one stream (and of others, sharing batches) through the real engine: seq
    numbers follow arrival order and the final state is the offline state of the tokens in that order."""
    task = load(lm_run(tmp_path), "cpu")
    engine = Engine(streamer_for(task), SQLiteStore(tmp_path / "streams.db"))
    text = (TEXT * 2)[:50]

    async def main() -> list[Outcome]:
        b = Batcher(engine, max_batch=8, max_wait_ms=2, inline=inline)
        await b.start()
        jobs = []
        for i, ch in enumerate(text):
            req = ObserveRequest(text=ch, top=1)
            jobs.append(b.submit(Observation("one", None, *engine.streamer.parse(req), req)))
            other = ObserveRequest(text="xyz"[i % 3])
            jobs.append(b.submit(Observation(f"other{i % 7}", None, *engine.streamer.parse(other), other)))
        answers = await asyncio.gather(*jobs)
        await b.stop()
        return answers[::2]

    answers = asyncio.run(main())
    assert [a.body["seq"] for a in answers] == list(range(1, 51))
    with torch.no_grad():
        logits, _ = task.model(torch.tensor([task.ids(text)]))
    best = next_token_probs(task, logits[0]).max(-1)
    for t, a in enumerate(answers):
        assert a.body["answer"]["next"][0]["p"] == pytest.approx(float(best.values[t]), rel=1e-5)
    assert json.loads(engine.store.get("one").answer)["steps"] == 50


def test_a_failed_batch_answers_a_request_id_not_the_internal_error(caplog):
    class Broken:
        def run(self, items: list[Observation]) -> list[Outcome]:
            raise sqlite3.OperationalError("disk I/O error writing /srv/secret/streams.db")

        prepare = run

    async def main() -> Outcome:
        b = Batcher(Broken(), max_batch=4, max_wait_ms=1)  # type: ignore[arg-type]
        await b.start()
        out = await b.submit(_obs("a"))
        await b.stop()
        return out

    with caplog.at_level(logging.ERROR, logger="rnnkit.serve"):
        out = asyncio.run(main())
    assert out.status == 503 and "retry" in out.body["detail"]
    text = json.dumps(out.body)
    assert "secret" not in text and "I/O" not in text and "sqlite" not in text.lower()
    rid = out.body["request_id"]
    assert rid in out.body["detail"] and any(rid in r.getMessage() and r.exc_info for r in caplog.records)
    assert "/srv/secret" in caplog.text  # the operator sees what happened


def test_a_streams_queue_is_bounded():
    class Slow(Recorder):
        def run(self, items: list[Observation]) -> list[Outcome]:
            time.sleep(0.05)
            return super().run(items)

    async def main() -> list[Outcome]:
        b = Batcher(Slow(), max_batch=8, max_wait_ms=1, max_queue=3, inline=True)  # type: ignore[arg-type]
        await b.start()
        answers = await asyncio.gather(*(b.submit(_obs("a", i)) for i in range(6)), b.submit(_obs("b")))
        await b.stop()
        return answers

    answers = asyncio.run(main())
    assert [a.status for a in answers] == [200, 200, 200, 429, 429, 429, 200]
    assert answers[3].body["field"] == "stream" and "3 observations" in answers[3].body["detail"]


def test_a_commit_that_fails_on_the_commit_thread_applies_nothing(tmp_path):
    """Inline batches commit on the worker thread: a failing COMMIT there is a 503 with nothing applied, and the
    next batch works."""
    from test_serve_store import _FailingDb

    task = load(lm_run(tmp_path), "cpu")
    store = SQLiteStore(tmp_path / "streams.db")
    engine = Engine(streamer_for(task), store)
    req = ObserveRequest(text="a", seq=1)

    async def main() -> tuple[Outcome, Outcome]:
        b = Batcher(engine, max_batch=4, max_wait_ms=1, inline=True)
        await b.start()
        store._local.db = _FailingDb(store._db())  # the loop thread's connection: its next COMMIT fails
        failed = await b.submit(Observation("s", 1, *engine.streamer.parse(req), req))
        again = await b.submit(Observation("s", 1, *engine.streamer.parse(req), req))
        await b.stop()
        return failed, again

    failed, again = asyncio.run(main())
    assert failed.status == 503 and again.status == 200 and again.body["seq"] == 1 and not again.body["replayed"]
    assert store.get("s").seq == 1
