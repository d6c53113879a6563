"""The HTTP server (FastAPI): stateless predictions, and streams whose state the server keeps.

    GET    /v1/model                      what the model takes and gives
    POST   /v1/predict                    whole inputs, the answers of `rnnkit predict` (`generate` for an LM)
    POST   /v1/streams/{id}/observe       the stream's next observation(s): one step from its state, the answer
    GET    /v1/streams/{id}               steps seen, last update
    DELETE /v1/streams/{id}               forget a stream
    GET    /healthz, /metrics, /docs      health (no key needed), Prometheus text, OpenAPI

Observations go through the :class:`~rnnkit.serve.batcher.Batcher` (micro-batches across streams) and the
:class:`~rnnkit.serve.engine.Engine` (one store transaction per batch, committed before any answer is sent).
"""

import asyncio
import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import torch
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from ..tasks import load
from ..tasks.base import Task, model_dir
from .batcher import Batcher
from .config import Limits, ServeConfig
from .engine import Engine, Observation, error
from .gate import Busy, Gate
from .guard import Guard
from .metrics import Metrics
from .predict import describe, predict
from .schemas import (
    STREAM_ID,
    ErrorBody,
    Health,
    ModelInfo,
    ObserveResponse,
    PredictResponse,
    StreamInfo,
    bounded,
)
from .store import SQLiteStore, Store, model_fingerprint, open_store
from .streaming import RequestError, streamer_for

StreamId = Path(..., pattern=STREAM_ID, description="letters, digits and . _ : @ -; at most 128 characters")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "the model cannot do this (e.g. stream a bidirectional model)"),
        (401, "missing or wrong API key"),
        (413, "request body too large"),
        (422, "a field is missing or invalid (named in 'field')"),
    )
}

PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": ErrorBody, "description": "request body too large, or too much decoding work (translator)"},
    503: {"model": ErrorBody, "description": "every predict thread is busy and the queue is full; retry"},
}


def _error(status: int, detail: str, field: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field, **extra}, status)


def create_app(cfg: ServeConfig, task: Task | None = None, store: Store | None = None) -> FastAPI:
    """The app serving ``cfg.run`` (or an already loaded ``task``) with streams in ``cfg.store`` (or ``store``)."""
    task = task if task is not None else load(cfg.run, cfg.device)
    task.model.eval()
    store = store if store is not None else open_store(cfg.store)  # type: ignore[arg-type]
    store.check_model(model_fingerprint(model_dir(cfg.run)))
    streamer = streamer_for(task, cfg.limits)
    # the request models with this server's bounds (validated and shown at /docs)
    Observe, Predict = bounded(cfg.limits)
    engine = Engine(streamer, store, idle_ttl=cfg.idle_ttl, max_streams=cfg.max_streams)
    metrics = Metrics(store.count)
    # a local SQLite batch runs on the event loop; a PostgreSQL one (network, other servers' locks) on a thread
    batcher = Batcher(
        engine,
        cfg.max_batch,
        cfg.max_wait_ms,
        metrics.batch,
        inline=isinstance(store, SQLiteStore),
        max_queue=cfg.stream_queue,
    )
    info = describe(task, streamer)
    gate = Gate(cfg.predict_threads, cfg.predict_queue)

    async def sweep() -> None:
        """Idle streams become tombstones (their state is freed, the 404 remains); old tombstones go."""
        period = min(cfg.idle_ttl / 2, 60.0)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):  # a busy store now is fine: the next round catches up
                now = time.time()
                while await asyncio.to_thread(store.expire, now - cfg.idle_ttl, 1000) == 1000:
                    pass
                while await asyncio.to_thread(store.purge, now - cfg.idle_ttl - cfg.tombstone_ttl, 1000) == 1000:
                    pass

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        sweeper = asyncio.create_task(sweep()) if cfg.idle_ttl > 0 else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
            await batcher.stop()
            gate.close()
            store.close()  # connections only: the next use reopens them

    app = FastAPI(
        title=f"rnnkit serve: {task.name} model",
        description=f"Serving {cfg.run}. Streams: {info['streaming']}",
        version="1",
        lifespan=lifespan,
    )
    app.state.task, app.state.store, app.state.engine, app.state.batcher = task, store, engine, batcher

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return _error(422, f"{first['field']}: {first['message']}", first["field"], errors=errors)

    @app.exception_handler(RequestError)
    async def refused(_: Request, exc: RequestError) -> JSONResponse:
        response = _error(exc.status, str(exc), exc.field)
        if isinstance(exc, Busy):
            response.headers["retry-after"] = "1"
        return response

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), None)

    @app.get("/healthz", response_model=Health)
    def healthz() -> dict[str, Any]:
        """Liveness: the model is loaded (no key needed)."""
        return {"status": "ok", "task": task.name}

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus() -> Response:
        """Prometheus text: requests, latency, batch sizes, observations, live streams."""
        return Response(metrics.text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/model", response_model=ModelInfo, responses=ERRORS)
    def model_info() -> dict[str, Any]:
        """The task, the fields that observe and predict read, the outputs, and the model's facts."""
        return info

    @app.post("/v1/predict", response_model=PredictResponse, responses=PREDICT_ERRORS)
    async def predict_route(req: Predict) -> dict[str, Any]:
        """Whole inputs, no state: the answers `rnnkit predict` gives (for a language model, `rnnkit generate`).
        Calls run on `--predict-threads` threads, at most `--predict-queue` more wait; beyond, a 503."""
        return {"task": task.name, "outputs": await gate.run(predict, task, req, cfg.limits)}

    @app.post(
        "/v1/streams/{stream_id}/observe",
        response_model=ObserveResponse,
        responses={
            **ERRORS,
            404: {"model": ErrorBody, "description": "the stream expired (idle past --idle-ttl)"},
            409: {"model": ErrorBody, "description": "seq is not the next one ('expected' says which)"},
            503: {"model": ErrorBody, "description": "the batch could not be applied; retry"},
        },
    )
    async def observe(req: Observe, stream_id: str = StreamId) -> JSONResponse:
        """The next observation(s) of a stream: the server steps the model from the stream's state, commits the new
        state, then answers. With `seq`, a retry of the last call returns its stored answer (no second step)."""
        inputs, steps = streamer.parse(req)
        outcome = await batcher.submit(Observation(stream_id, req.seq, inputs, steps, req))
        if outcome.applied:
            metrics.observed(outcome.applied)
        return Response(outcome.raw, outcome.status, media_type="application/json")

    def _record(stream_id: str):
        rec = store.get(stream_id)
        if rec is None:
            raise RequestError("stream", f"no stream {stream_id!r}", status=404)
        if engine.expired(rec, time.time()):
            raise RequestError("stream", engine.expired_message(stream_id), status=404)
        return rec

    stream_errors = {**ERRORS, 404: {"model": ErrorBody, "description": "no such stream, or it expired"}}

    @app.get("/v1/streams/{stream_id}", response_model=StreamInfo, responses=stream_errors)
    def stream_info(stream_id: str = StreamId) -> dict[str, Any]:
        """How far a stream is: calls and observations applied, first and last update."""
        rec = _record(stream_id)
        expires = rec.updated + cfg.idle_ttl if cfg.idle_ttl > 0 else None
        return {
            "stream": rec.id,
            "seq": rec.seq,
            "steps": rec.steps,
            "created": rec.created,
            "updated": rec.updated,
            "expires": expires,
        }

    @app.delete("/v1/streams/{stream_id}", responses=stream_errors)
    def stream_delete(stream_id: str = StreamId) -> dict[str, Any]:
        """Forget a stream (its next observe starts it anew, from seq 1)."""
        if not store.delete(stream_id):
            raise RequestError("stream", f"no stream {stream_id!r}", status=404)
        return {"stream": stream_id, "deleted": True}

    async def fast_observe(stream_id: str, body: bytes, send: Any) -> int:
        """``observe`` for a well-formed request: the same answer without FastAPI's per-request machinery."""
        try:
            req = Observe.model_validate_json(body)
        except ValidationError:
            return 0  # the route gives the usual 422
        try:
            inputs, steps = streamer.parse(req)
        except RequestError as exc:
            outcome = error(exc.status, str(exc), exc.field)
        else:
            outcome = await batcher.submit(Observation(stream_id, req.seq, inputs, steps, req))
            if outcome.applied:
                metrics.observed(outcome.applied)
        data = outcome.raw
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": outcome.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return outcome.status

    guarded = Guard(app, cfg.api_key, cfg.limits.max_body_bytes, metrics)
    guarded.fast_observe = fast_observe
    app.state.guarded = guarded
    return app


def asgi(cfg: ServeConfig, **kwargs: Any) -> Guard:
    """The app wrapped in the key/size/metrics layer: what uvicorn serves."""
    return create_app(cfg, **kwargs).state.guarded


#: the environment variable through which ``rnnkit serve --workers N`` hands its options to each worker
CONFIG_ENV = "RNNKIT_SERVE_CONFIG"


def from_env() -> Guard:
    """``asgi`` of the options in ``$RNNKIT_SERVE_CONFIG`` (uvicorn's factory in each worker process)."""
    data = json.loads(os.environ[CONFIG_ENV])
    key_env = data.pop("api_key_env", None)
    limits = Limits(**data.pop("limits", {}))
    cfg = ServeConfig(**data, limits=limits, api_key=os.environ[key_env] if key_env else None)
    # this process is a server: oversubscribed intra-op threads make a busy CPU many times slower
    torch.set_num_threads(cfg.threads)
    # the batch thread hands the GIL back and forth with the HTTP loop at every torch and SQLite call; at the
    # default 5 ms switch interval each handoff can stall a batch that long
    sys.setswitchinterval(float(os.environ.get("RNNKIT_SWITCH_INTERVAL", "0.0005")))
    app = asgi(cfg)
    # the model, torch and the libraries are hundreds of thousands of objects that live as long as the process:
    # out of the collector's way, a full collection no longer walks them all (pauses that were the p99)
    gc.collect()
    gc.freeze()
    # at the default threshold (700 net allocations) the objects of the requests in flight set the collector off
    # ~60 times a second under load (4 CPU-us per observation, and a full collection every few seconds) though
    # they are not garbage; above their number it ran once in 10 s (measured with gc.callbacks under wrk)
    gc.set_threshold(10_000, 20, 100)
    return app
