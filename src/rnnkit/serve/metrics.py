"""Prometheus metrics of one server process (text format at ``GET /metrics``): requests by endpoint and status,
request latency, batch sizes and batch times, observations applied, and the live streams in the store.

The hot path only adds to plain counters (one ``bisect`` per histogram value): prometheus_client's metric objects
take a lock and walk the buckets in Python for every value, 2.6 CPU-us per request, more than the HTTP parsing of
an ``observe`` body. Their families are built from the counters at each scrape (:class:`_Collector`). All updates
come from the server's event loop; a scrape reads copies.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Histogram:
    """Counts per bucket (the last one is +Inf) and the sum of the values."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # the first bound >= value: Prometheus' "le"
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        counts, total, out = list(self.counts), 0, []
        for bound, n in zip((*self.bounds, float("inf")), counts):
            total += n
            out.append((floatToGoString(bound), float(total)))
        return out


class Metrics:
    """The metrics of one app; ``count_streams`` is asked at each scrape."""

    def __init__(self, count_streams: Callable[[], int]) -> None:
        self.count_streams = count_streams
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.batch_size = _Histogram(_SIZES)
        self.batch_seconds = _Histogram(_LATENCY)
        self.observations = 0
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(self))

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        key = (endpoint, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        latency = self.latency.get(endpoint)
        if latency is None:
            latency = self.latency[endpoint] = _Histogram(_LATENCY)
        latency.observe(seconds)

    def observed(self, n: int) -> None:
        """``n`` observations were applied."""
        self.observations += n

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    """The metric families of a :class:`Metrics`, built at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []  # nothing to check against other collectors at registration

    def collect(self) -> Iterator[Metric]:
        m = self.m
        requests = CounterMetricFamily("rnnkit_requests", "HTTP requests", labels=["endpoint", "status"])
        for (endpoint, status), n in sorted(list(m.requests.items())):  # list(): one step, under the GIL
            requests.add_metric([endpoint, str(status)], float(n))
        yield requests
        latency = HistogramMetricFamily("rnnkit_request_seconds", "request latency", labels=["endpoint"])
        for endpoint, h in sorted(list(m.latency.items())):
            latency.add_metric([endpoint], h.buckets(), h.sum)
        yield latency
        for name, doc, h in (
            ("rnnkit_batch_size", "observations per batch", m.batch_size),
            ("rnnkit_batch_seconds", "time to run a batch", m.batch_seconds),
        ):
            family = HistogramMetricFamily(name, doc)
            family.add_metric([], h.buckets(), h.sum)
            yield family
        yield CounterMetricFamily("rnnkit_observations", "observations applied", value=float(m.observations))
        yield GaugeMetricFamily("rnnkit_streams", "live streams in the store", value=float(m.count_streams()))
