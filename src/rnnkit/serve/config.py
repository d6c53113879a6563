"""Options of ``rnnkit serve``, grouped: where the model and the streams live, batching, limits and security."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import option


@dataclass
class Limits:
    """Bounds on what one request may ask for (each breach is a 4xx naming the field).

    Attributes:
        max_body_bytes: the largest request body accepted (413 above).
        max_chunk: observations in one ``observe`` call (rows or tokens).
        max_text: characters of any text field.
        max_items: inputs in one ``/v1/predict`` call.
        max_rows: rows of one series given to ``/v1/predict``.
        max_generate: tokens one ``/v1/predict`` call of a language model may generate.
        max_top: most likely next tokens an ``observe`` of a language model may list.
        max_source_tokens: tokens of one translator input (its decoding stops 10 tokens past the source length).
        max_beam: the largest beam a ``/v1/predict`` call of a translator may ask for.
        max_decode_work: decoding work of one ``/v1/predict`` call of a translator: the sum over its inputs of
            (source tokens + 10) times the beam (413 above).
    """

    max_body_bytes: int = 1 << 20
    max_chunk: int = 256
    max_text: int = 10_000
    max_items: int = 256
    max_rows: int = 10_000
    max_generate: int = 500
    max_top: int = 100
    max_source_tokens: int = 200
    max_beam: int = 16
    max_decode_work: int = 8192


@dataclass
class ServeConfig:
    """How one ``rnnkit serve`` process runs.

    Attributes:
        run: the run directory made by ``rnnkit train`` (its ``model/`` is served).
        store: where streams are kept: ``sqlite:///path/streams.db`` (the default, inside the run directory) or
            ``postgresql://...`` (several servers sharing the streams).
        api_key: the key every endpoint but ``/healthz`` requires; None serves without one.
        max_batch: most streams stepped in one batched call.
        max_wait_ms: how long the first observation of a batch may wait for others to join it.
        idle_ttl: seconds after its last update a stream expires (0: never): its state is dropped, a tombstone
            remains so that its next call hears it expired.
        tombstone_ttl: seconds a tombstone is kept (after that the stream id is simply unknown).
        max_streams: most live streams in the store (0: no bound); observing a new stream beyond it is a 429.
        device: where the model runs.
        threads: torch threads for the model (the HTTP event loop needs a core of its own too).
        stream_queue: observations of one stream that may wait for their turn (429 beyond).
        max_connections: connections (and requests in progress) one server process takes; beyond, uvicorn
            answers 503.
        predict_threads: threads that run ``/v1/predict`` calls (each a whole model pass, seconds for a long
            translation): at most this many at once.
        predict_queue: ``/v1/predict`` calls that may wait for a thread; beyond, a 503 with ``Retry-After``.
        limits: request bounds.
    """

    run: Path
    store: str | None = None
    api_key: str | None = None
    max_batch: int = 256
    max_wait_ms: float = 2.0
    idle_ttl: float = 7 * 24 * 3600.0
    tombstone_ttl: float = 7 * 24 * 3600.0
    max_streams: int = 1_000_000
    device: str = "cpu"
    threads: int = 1
    stream_queue: int = 64
    max_connections: int = 1024
    predict_threads: int = 1
    predict_queue: int = 8
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        self.run = Path(self.run)
        if self.store is None:
            self.store = f"sqlite:///{(self.run / 'streams.db').resolve()}"
        if self.max_batch < 1:
            raise ValueError(f"{option('max_batch')} must be >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"{option('max_wait_ms')} must be >= 0, got {self.max_wait_ms}")
        if self.threads < 1:
            raise ValueError(f"{option('threads')} must be >= 1, got {self.threads}")
        if self.stream_queue < 1:
            raise ValueError(f"{option('stream_queue')} must be >= 1, got {self.stream_queue}")
        if self.max_connections < 1:
            raise ValueError(f"{option('max_connections')} must be >= 1, got {self.max_connections}")
        if self.predict_threads < 1:
            raise ValueError(f"{option('predict_threads')} must be >= 1, got {self.predict_threads}")
        if self.predict_queue < 0:
            raise ValueError(f"{option('predict_queue')} must be >= 0, got {self.predict_queue}")
        if self.idle_ttl < 0:
            raise ValueError(f"{option('idle_ttl')} must be >= 0 seconds (0: never expire), got {self.idle_ttl}")
        if self.tombstone_ttl < 0:
            raise ValueError(f"{option('tombstone_ttl')} must be >= 0 seconds, got {self.tombstone_ttl}")
        if self.max_streams < 0:
            raise ValueError(f"{option('max_streams')} must be >= 0 (0: no bound), got {self.max_streams}")
