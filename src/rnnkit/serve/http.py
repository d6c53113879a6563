"""uvicorn's HTTP protocol (httptools) with one socket write per response instead of two.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body at ``http.response.body``:
two ``send`` system calls and two TCP segments, each waking the client. For an ``observe`` answer of ~100 bytes the
second write cost the load client a third of its CPU (wrk: 26 -> 17 CPU-us per observation) and the server a few
CPU-us of system time. Here a connection's writes made within one event-loop step are joined and sent at the end
of that step: the answers of a batch, whose tasks all resume in one step, then go out together in the next (writing
each as soon as it was complete, between the other tasks' work, cost the client 3 CPU-us more per observation: more
wake-ups). The batcher lets that step run before it starts the next batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - without httptools, uvicorn picks its own protocol (see protocol_name)
    HttpToolsProtocol = asyncio.Protocol  # type: ignore[assignment,misc]

__all__ = ["CoalescingProtocol", "CoalescingTransport", "protocol_name"]


class CoalescingTransport:
    """Wraps a transport: the data written within one event-loop step goes out as one ``write`` at its end, or
    earlier at :meth:`flush`; a ``close`` sends what is pending first. Everything else is the wrapped transport's."""

    __slots__ = ("_loop", "_pending", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes:  # a caller may reuse its buffer once write() returns: keep a copy
            data = bytes(data)
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, chunks: Any) -> None:
        for data in chunks:
            self.write(data)

    def flush(self) -> None:
        """Send what was written (a no-op once the connection is closing: the peer is gone)."""
        pending, self._pending = self._pending, []
        if pending and not self.transport.is_closing():
            self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` writing through a :class:`CoalescingTransport` (``uvicorn.run(http=...)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def protocol_name() -> str:
    """What ``rnnkit serve`` gives uvicorn as ``http``: this protocol, or uvicorn's choice without httptools."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - the serve extra installs it
        return "auto"
    return f"{__name__}:CoalescingProtocol"
