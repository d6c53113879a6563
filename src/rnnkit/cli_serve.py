"""``rnnkit serve RUN``: the HTTP server (see :mod:`rnnkit.serve`)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import typer

from .cli_common import console, friendly


def register(app: typer.Typer) -> None:
    """Add ``rnnkit serve`` to the command line."""

    @app.command()
    @friendly
    def serve(
        run: Path = typer.Argument(..., help="run directory made by 'rnnkit train'"),
        host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
        port: int = typer.Option(8000, help="port to listen on"),
        store: str = typer.Option(
            None,
            help="where streams live: sqlite:///path.db (default: RUN/streams.db) or postgresql://user@host/db "
            "(several servers sharing the streams)",
        ),
        api_key_env: str = typer.Option(
            None, "--api-key-env", help="name of an environment variable holding the API key every endpoint needs"
        ),
        max_batch: int = typer.Option(256, "--max-batch", help="most streams stepped in one batch (1: no batching)"),
        max_wait_ms: float = typer.Option(
            2.0, "--max-wait-ms", help="how long an observation may wait for others to join its batch"
        ),
        idle_ttl: float = typer.Option(
            7 * 24 * 3600.0, "--idle-ttl", help="seconds without observations after which a stream expires (0: never)"
        ),
        tombstone_ttl: float = typer.Option(
            7 * 24 * 3600.0,
            "--tombstone-ttl",
            help="seconds an expired stream's tombstone (its 'expired' 404) is kept before the id is forgotten",
        ),
        max_streams: int = typer.Option(
            1_000_000, "--max-streams", help="most live streams in the store; a new one beyond is a 429 (0: no bound)"
        ),
        stream_queue: int = typer.Option(
            64, "--stream-queue", help="observations of one stream that may wait for their turn (429 beyond)"
        ),
        max_connections: int = typer.Option(
            1024, "--max-connections", help="connections one server process takes at once (503 beyond)"
        ),
        workers: int = typer.Option(1, help="server processes on this port (they share the store)"),
        device: str = typer.Option("cpu", help="where the model runs: cpu, cuda, mps or auto"),
        threads: int = typer.Option(1, help="torch threads per server process (the HTTP loop needs a core too)"),
        predict_threads: int = typer.Option(
            1, "--predict-threads", help="/v1/predict calls run at once per process (each a whole model pass)"
        ),
        predict_queue: int = typer.Option(
            8, "--predict-queue", help="/v1/predict calls that may wait for a thread; beyond, a 503 with Retry-After"
        ),
    ) -> None:
        """Serve a trained model over HTTP: stateless predictions and streams whose state the server keeps
        (durably, in SQLite or PostgreSQL), with micro-batching across streams. OpenAPI docs at /docs.

        Example: rnnkit serve runs/sales --port 8000 --api-key-env RNNKIT_API_KEY
        """
        try:
            import uvicorn

            from .serve.app import CONFIG_ENV
            from .serve.http import protocol_name
        except ImportError as exc:
            missing = f"rnnkit serve needs the serve extra ({exc.name} is missing)"
            raise ValueError(f"{missing}: pip install 'rnnkit[serve]'") from None
        from .serve.config import ServeConfig
        from .tasks.base import model_dir

        model_dir(run)  # a clear error for a path that is not a run directory, before any worker starts
        key = None
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set")
        if workers < 1:
            raise ValueError(f"--workers must be >= 1, got {workers}")
        cfg = ServeConfig(
            run=run,
            store=store,
            api_key=key,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            idle_ttl=idle_ttl,
            tombstone_ttl=tombstone_ttl,
            max_streams=max_streams,
            device=device,
            threads=threads,
            stream_queue=stream_queue,
            max_connections=max_connections,
            predict_threads=predict_threads,
            predict_queue=predict_queue,
        )
        shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("api_key", "limits")}
        shared["limits"] = dataclasses.asdict(cfg.limits)
        os.environ[CONFIG_ENV] = json.dumps({**shared, "run": str(cfg.run), "api_key_env": api_key_env})
        console.print(f"serving {run} on http://{host}:{port} (docs: /docs; streams: {_shown(cfg.store)})")
        uvicorn.run(
            "rnnkit.serve.app:from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            limit_concurrency=cfg.max_connections,
            proxy_headers=False,  # the client address is not used; the middleware cost 5% of an observe
            http=protocol_name(),  # a response's head and body in one write (rnnkit.serve.http)
        )


def _shown(url: str | None) -> str:
    from .serve.store import redact

    return redact(url or "")
