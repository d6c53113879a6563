"""The server's metrics: plain counters exposed as the same Prometheus text prometheus_client's own metric objects
give for the same values."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rnnkit.serve.metrics import _LATENCY, _SIZES, Metrics


def test_text_equals_prometheus_clients():
    rng = random.Random(0)
    ours = Metrics(lambda: 7)
    r = CollectorRegistry()
    requests = Counter("rnnkit_requests", "HTTP requests", ["endpoint", "status"], registry=r)
    latency = Histogram("rnnkit_request_seconds", "request latency", ["endpoint"], buckets=_LATENCY, registry=r)
    sizes = Histogram("rnnkit_batch_size", "observations per batch", buckets=_SIZES, registry=r)
    seconds = Histogram("rnnkit_batch_seconds", "time to run a batch", buckets=_LATENCY, registry=r)
    observations = Counter("rnnkit_observations", "observations applied", registry=r)
    Gauge("rnnkit_streams", "live streams in the store", registry=r).set(7)
    for _ in range(2000):
        endpoint = rng.choice(["/v1/model", "/v1/streams/{id}/observe", "other"])
        status = rng.choice([200, 404, 409, 422])
        # values on the bucket bounds too (a bound is "less or equal")
        value = rng.choice([*_LATENCY, 0.0, 1e-4, 0.003, 7.5, rng.random()])
        ours.request(endpoint, status, value)
        requests.labels(endpoint, str(status)).inc()
        latency.labels(endpoint).observe(value)
        size = rng.choice([*_SIZES, 3, 100, 2000])
        ours.batch(size, value)
        sizes.observe(size)
        seconds.observe(value)
        ours.observed(size)
        observations.inc(size)

    def samples(text: bytes) -> dict[str, float]:
        out = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#") and "_created" not in line:
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    expected, got = samples(generate_latest(r)), samples(ours.text())
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name
