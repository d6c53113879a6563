"""The coalescing HTTP protocol: one write per loop step, a close sends what is pending, and uvicorn serves with it
(keep-alive, ``Connection: close``, large bodies)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

pytest.importorskip("httptools")

import httpx
import uvicorn

from rnnkit.serve.http import CoalescingProtocol, CoalescingTransport, protocol_name


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_step_go_out_as_one():
    async def main() -> tuple[list[bytes], list[bytes], FakeTransport]:
        fake = FakeTransport()
        t = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        reused = bytearray(b'{"a":1}')
        t.write(reused)
        reused[:] = b"garbage"  # the writer's buffer, reused before the write went out
        before = list(fake.writes)  # nothing sent within the step
        await asyncio.sleep(0)
        after = list(fake.writes)
        t.write(b"x")
        t.close()  # sends what is pending, then closes
        assert t.get_extra_info("peername") == "info:peername"  # the rest is the wrapped transport's
        return before, after, fake

    before, after, fake = asyncio.run(main())
    assert before == [] and after == [b'HTTP/1.1 200 OK\r\n\r\n{"a":1}']
    assert fake.writes[-1] == b"x" and fake.closed


def test_nothing_is_written_to_a_closing_transport():
    async def main() -> FakeTransport:
        fake = FakeTransport()
        t = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"late")
        fake.closed = True  # the peer went away meanwhile
        await asyncio.sleep(0)
        return fake

    assert asyncio.run(main()).writes == []


class Recorder:
    """A transport's writes, recorded on their way to it."""

    def __init__(self, transport) -> None:
        self.transport, self.writes = transport, []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self.transport, name)


BIG = b"z" * 300_000


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"] == "/big":  # several body messages
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(BIG))]})
        for i in range(0, len(BIG), 100_000):
            await send({"type": "http.response.body", "body": BIG[i : i + 100_000], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def test_uvicorn_serves_with_it():
    assert protocol_name() == "rnnkit.serve.http:CoalescingProtocol"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, http=protocol_name(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url) as c:  # one keep-alive connection
            assert [c.post(f"/r{i}", content=b"{}").text for i in range(20)] == [f"/r{i}" for i in range(20)]
            (conn,) = server.server_state.connections
            assert isinstance(conn, CoalescingProtocol) and isinstance(conn.transport, CoalescingTransport)
            sent = conn.transport.transport = Recorder(conn.transport.transport)
            assert c.post("/one", content=b"{}").text == "/one"
            assert len(sent.writes) == 1 and sent.writes[0].startswith(b"HTTP/1.1 200")  # head and body: one write
            assert c.get("/big").content == BIG
        with socket.create_connection(("127.0.0.1", port)) as raw:  # the answer arrives whole before the close
            raw.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := raw.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\n/last")
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_batchs_answers_are_written_before_the_next_batch_runs():
    """Answers written through the coalescing transport (as uvicorn writes them) have gone out when the inline
    batcher steps the next batch, which holds the event loop."""
    from rnnkit.serve.batcher import Batcher
    from rnnkit.serve.engine import Observation, Outcome
    from rnnkit.serve.schemas import ObserveRequest
    from rnnkit.serve.store import Batch

    fake = FakeTransport()
    seen: list[int] = []  # answers sent, as each batch began

    class Engine:
        def prepare(self, items: list[Observation]) -> tuple[list[Outcome], Batch]:
            seen.append(len(fake.writes))
            return [Outcome(200, {"stream": it.stream}) for it in items], Batch({})

    async def main() -> None:
        transport = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        b = Batcher(Engine(), max_batch=1, max_wait_ms=0, inline=True)  # type: ignore[arg-type]
        await b.start()

        async def client(stream: str) -> None:
            outcome = await b.submit(Observation(stream, None, None, 1, ObserveRequest(token="a")))
            transport.write(b"head ")  # as uvicorn sends an answer: head, then body
            transport.write(outcome.raw)

        await asyncio.gather(*(client(s) for s in ("a", "b", "c")))
        await asyncio.sleep(0)
        await b.stop()

    asyncio.run(main())
    assert seen == [0, 1, 2]
    assert fake.writes == [b'head {"stream":"%s"}' % s for s in (b"a", b"b", b"c")]
