"""``rnnkit serve``: a trained model over HTTP, with per-stream state kept durably between observations.

Pieces (one idea per module): :mod:`.config` (options), :mod:`.schemas` (the JSON API), :mod:`.store` and
:mod:`.store_pg` (where streams live: SQLite, PostgreSQL), :mod:`.streaming` and :mod:`.forecast_stream` (how each
task steps a batch of streams), :mod:`.engine` (one batch: lock, check, step, commit), :mod:`.batcher`
(micro-batching), :mod:`.predict` (stateless answers), :mod:`.guard` (key, size, metrics), :mod:`.app` (routes).
Needs the ``serve`` extra: ``pip install 'rnnkit[serve]'``.
"""

from __future__ import annotations

from .config import Limits, ServeConfig

__all__ = ["Limits", "ServeConfig", "asgi", "create_app"]


def __getattr__(name: str) -> object:
    # the app pulls in FastAPI: import it only when asked for
    if name in ("asgi", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
