"""Prometheus metrics of one server process (text format at ``GET /metrics``): requests by endpoint and status,
request latency, batch sizes and batch times, observations applied, and the live streams in the store."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The metrics of one app; ``count_streams`` is asked at each scrape."""

    def __init__(self, count_streams: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rnnkit_requests", "HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "rnnkit_request_seconds", "request latency", ["endpoint"], buckets=_LATENCY, registry=r
        )
        self.batch_size = Histogram("rnnkit_batch_size", "observations per batch", buckets=_SIZES, registry=r)
        self.batch_seconds = Histogram("rnnkit_batch_seconds", "time to run a batch", buckets=_LATENCY, registry=r)
        self.observations = Counter("rnnkit_observations", "observations applied", registry=r)
        self.streams = Gauge("rnnkit_streams", "live streams in the store", registry=r)
        self.streams.set_function(lambda: float(count_streams()))
        self._children: dict[tuple[str, int], tuple] = {}

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        children = self._children.get((endpoint, status))
        if children is None:  # endpoints and statuses are few: each pair's children are looked up once
            children = self._children[endpoint, status] = (
                self.requests.labels(endpoint, str(status)),
                self.latency.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
