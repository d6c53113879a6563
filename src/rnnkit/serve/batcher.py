"""Micro-batching: observations of different streams that arrive within ``max_wait_ms`` of each other are
stepped together (one model call, one store transaction); observations of one stream go one per batch, in the
order they arrived.

Each stream has a FIFO of waiting observations; a stream is *ready* when it has one and is not in the running
batch. The loop takes the oldest-ready streams' first observations (at most ``max_batch``), waiting up to
``max_wait_ms`` after the oldest of them arrived for more to join, and runs the batch on a worker thread while
the next one gathers, or (``inline``) on the event loop itself: with a local store a batch is a few milliseconds
of work that holds the GIL, and a worker thread then trades the GIL with the HTTP loop at every torch and SQLite
call, which starves both (measured: batches of ~3 at 128 requests in flight); inline, the loop parses every request
that arrived during a batch before the next one, so batches grow with the load. Inline, only the COMMIT (the wait
for the disk, which releases the GIL) goes to the worker thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .engine import Engine, Observation, Outcome, error

log = logging.getLogger("rnnkit.serve")


class Batcher:
    """Queues observations and runs them through ``engine`` in batches; ``on_batch(size, seconds)`` is called
    after each batch (metrics)."""

    def __init__(
        self,
        engine: Engine,
        max_batch: int,
        max_wait_ms: float,
        on_batch: Any = None,
        inline: bool = False,
        max_queue: int = 64,
    ) -> None:
        self.engine, self.max_batch, self.max_wait = engine, max_batch, max_wait_ms / 1000.0
        self.on_batch, self.inline, self.max_queue = on_batch, inline, max_queue
        self._pending: dict[str, collections.deque] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        # the loop, kept: asyncio.get_running_loop() makes a getpid system call each time (fork check)
        self._event_loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rnnkit-batch")
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def submit(self, obs: Observation) -> Outcome:
        """Queue ``obs`` behind the stream's earlier observations and wait for its answer."""
        queue = self._pending.get(obs.stream)
        if queue is None:
            queue = self._pending[obs.stream] = collections.deque()
            self._ready.append(obs.stream)
        elif len(queue) >= self.max_queue:  # one client flooding one stream: its observations can only go in turn
            return error(
                429,
                f"stream {obs.stream!r} already has {len(queue)} observations waiting for their turn (--stream-queue); "
                "wait for their answers",
                "stream",
            )
        assert self._wake is not None and self._event_loop is not None, "Batcher.start() first"
        fut = self._event_loop.create_future()
        queue.append((obs, fut, time.monotonic()))
        self._wake.set()
        return await fut

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._ready:
                self._wake.clear()
                await self._wake.wait()
            deadline = self._pending[self._ready[0]][0][2] + self.max_wait
            while len(self._ready) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
            streams = [self._ready.popleft() for _ in range(min(self.max_batch, len(self._ready)))]
            taken = [self._pending[s].popleft() for s in streams]
            started = time.perf_counter()
            try:
                items = [t[0] for t in taken]
                if self.inline:
                    outcomes, batch = self.engine.prepare(items)
                    # the COMMIT waits for the disk (fsync) without the GIL: on the thread, while this loop reads
                    # the requests that arrive meanwhile (the next batch); the answers go out once it is durable
                    await loop.run_in_executor(self._pool, batch.commit)
                else:
                    outcomes = await loop.run_in_executor(self._pool, self.engine.run, items)
            except Exception:  # the store or the model failed: nothing of this batch was committed
                # the error (SQL, file paths) is for the operator's log; the client gets an id to quote
                rid = uuid.uuid4().hex[:12]
                log.exception("batch of %d observations failed (request id %s)", len(taken), rid)
                detail = f"the batch failed and was not applied; retry (request id {rid})"
                outcomes = [error(503, detail, None, request_id=rid)] * len(taken)
            if self.on_batch is not None:
                self.on_batch(len(taken), time.perf_counter() - started)
            for (_, fut, _), outcome in zip(taken, outcomes):
                if not fut.done():
                    fut.set_result(outcome)
            for s in streams:  # a stream with more waiting observations is ready again, behind the others
                if self._pending[s]:
                    self._ready.append(s)
                else:
                    del self._pending[s]
            store = getattr(self.engine, "store", None)
            if self.inline and store is not None and store.due:  # a WAL checkpoint: after the answers, before
                with contextlib.suppress(Exception):  # the next batch (which gathers requests meanwhile)
                    await loop.run_in_executor(self._pool, store.maintain)
            if self.inline:
                # the answers' tasks resume in the next loop step and their writes go out in the one after
                # (rnnkit.serve.http): both before this loop steps the next batch, which holds the loop meanwhile;
                # the loop also reads the requests that came in during the batch
                await asyncio.sleep(0)
                await asyncio.sleep(0)
