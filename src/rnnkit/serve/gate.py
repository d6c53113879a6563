"""A bounded place for blocking work (``/v1/predict``): a few threads run it, a few more calls may wait, and
beyond that a call is refused at once (503 with ``Retry-After``) instead of queueing without end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .streaming import RequestError

T = TypeVar("T")


class Busy(RequestError):
    """Every thread is busy and the queue is full: retry shortly."""

    def __init__(self, message: str) -> None:
        super().__init__(None, message, status=503)


class Gate:
    """Runs calls on ``threads`` threads with at most ``queue`` more waiting (counted until each call has really
    finished, also when its client went away)."""

    def __init__(self, threads: int, queue: int, name: str = "rnnkit-predict") -> None:
        self.threads, self.queue = threads, queue
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)
        self._taken = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._taken >= self.threads + self.queue:
            raise Busy(
                f"the server is busy with other /v1/predict calls ({self.threads} running, {self.queue} waiting; "
                "--predict-threads, --predict-queue); retry shortly"
            )
        loop = asyncio.get_running_loop()
        self._taken += 1
        future = self._pool.submit(fn, *args)
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self._taken -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
