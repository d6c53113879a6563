"""The ASGI layer in front of every route: the API key (constant-time comparison), the request-size bound, and
the per-request metrics (endpoint, status, latency)."""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .metrics import Metrics

#: endpoints reachable without the key (a load balancer's health check)
OPEN = frozenset({"/healthz"})
#: observe calls with a well-formed stream id: the one hot path (see :attr:`Guard.fast_observe`)
OBSERVE = re.compile(r"/v1/streams/([A-Za-z0-9][A-Za-z0-9._:@-]{0,127})/observe")
#: ``fast_observe(stream_id, body, send) -> the status it sent, or 0 when it leaves the request to the app``
FastObserve = Callable[[str, bytes, Any], Awaitable[int]]
_KNOWN = ("/healthz", "/metrics", "/v1/model", "/v1/predict", "/docs", "/openapi.json")


def endpoint_of(path: str) -> str:
    """A bounded label for metrics: the route, not the stream id."""
    if path.startswith("/v1/streams/"):
        return "/v1/streams/{id}/observe" if path.endswith("/observe") else "/v1/streams/{id}"
    return path if path in _KNOWN else "other"


async def _reply(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """Wraps the app: 401 without the key (if one is set), 413 for a body over ``max_body`` bytes."""

    def __init__(self, app: Any, api_key: str | None, max_body: int, metrics: Metrics) -> None:
        self.app, self.max_body, self.metrics = app, max_body, metrics
        self.key = api_key.encode() if api_key else None
        #: answers a JSON observe call without the framework's routing and parsing (a third of a request's CPU);
        #: it returns 0 for anything it does not take, which then goes the ordinary way (same errors)
        self.fast_observe: FastObserve | None = None

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        given = b""
        for name, value in headers:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
            elif name == b"x-api-key":
                given = value.strip()
        # compare_digest takes the same time wherever the strings differ (no timing oracle for the key)
        return hmac.compare_digest(given, self.key or b"")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        try:
            status = await self._handle(scope, receive, send)
        finally:
            self.metrics.request(endpoint_of(scope["path"]), status, time.perf_counter() - started)

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        """Answer the request (or hand it on); returns the status sent."""
        headers = scope.get("headers", [])
        if self.key is not None and scope["path"] not in OPEN and not self.authorized(headers):
            detail = "missing or wrong API key: send 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')"
            await _reply(send, 401, {"detail": detail, "field": "authorization"}, [(b"www-authenticate", b"Bearer")])
            return 401
        json_body = False
        for name, value in headers:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await _reply(send, 413, self._too_large())
                return 413
            if name == b"content-type":
                json_body = value.startswith(b"application/json")
        # read the body here, bounded, then hand it on (also bounds bodies sent without a length)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 499  # the client went away (nginx's code for it; only counted)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await _reply(send, 413, self._too_large())
                return 413
        if json_body and self.fast_observe is not None and scope["method"] == "POST":
            match = OBSERVE.fullmatch(scope["path"])
            if match is not None:
                status = await self.fast_observe(match.group(1), body, send)
                if status:
                    return status
        given, sent = False, [500]

        async def replay() -> dict[str, Any]:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent[0] = message["status"]
            await send(message)

        await self.app(scope, replay, send_status)
        return sent[0]

    def _too_large(self) -> dict[str, Any]:
        return {"detail": f"the request body is larger than {self.max_body} bytes", "field": "body"}
