"""The HTTP API in process: each endpoint, /v1/predict == `rnnkit predict`, retries, the key, limits, errors."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from _serve_runs import classify_run, forecast_run, lm_run, series, tag_run, translate_run
from rnnkit.decoding import SamplingConfig
from rnnkit.serve import ServeConfig, asgi
from rnnkit.tasks import load
from rnnkit.tasks.base import Inputs


def client(run, **options) -> TestClient:
    return TestClient(asgi(ServeConfig(run, **options)))


def test_model_info_and_health(tmp_path):
    with client(forecast_run(tmp_path)) as c:
        info = c.get("/v1/model").json()
        assert info["task"] == "forecast" and info["streams"] is True
        assert info["facts"]["timestep"] == 8 and info["facts"]["horizon"] == 3
        assert [f["name"] for f in info["outputs"]] == ["y", "y_q0.1", "y_q0.5", "y_q0.9"]
        assert c.get("/healthz").json() == {"status": "ok", "task": "forecast", "streams": None}
        assert "/v1/streams/{stream_id}/observe" in c.get("/openapi.json").json()["paths"]


def test_predict_forecast_equals_cli_predict(tmp_path):
    run = forecast_run(tmp_path)
    frame = series(40)
    frame.to_csv(tmp_path / "s.csv", index=False)
    cli = pd.read_csv(io.StringIO(load(run, "cpu").predict_inputs(Inputs(data=tmp_path / "s.csv"))))
    with client(run) as c:
        r = c.post("/v1/predict", json={"inputs": [{"rows": frame.to_dict("records")}]})
    assert r.status_code == 200, r.text
    got = pd.DataFrame(r.json()["outputs"][0]["forecast"])
    assert (pd.to_datetime(got["date"]) == pd.to_datetime(cli["date"])).all()
    for col in cli.columns[1:]:
        assert got[col].to_numpy() == pytest.approx(cli[col].to_numpy(), rel=1e-6)


def test_predict_text_tasks_equal_cli(tmp_path):
    texts = ["the quick fox", "a lazy dog . the end"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    for make in (classify_run, tag_run, translate_run):
        run = make(tmp_path / make.__name__)
        task = load(run, "cpu")
        with client(run) as c:
            r = c.post("/v1/predict", json={"inputs": [{"text": t} for t in texts]})
        assert r.status_code == 200, r.text
        out = r.json()["outputs"]
        if task.name == "classify":
            cli = pd.read_csv(io.StringIO(task.predict_inputs(Inputs(data=tmp_path / "in.txt"))))
            assert [o["label"] for o in out] == cli["label"].tolist()
            assert [o["probabilities"]["pos"] for o in out] == pytest.approx(cli["p_pos"].tolist(), rel=1e-6)
        elif task.name == "tag":
            cli = task.predict_inputs(Inputs(data=tmp_path / "in.txt", text=True))
            blocks = [[line.split("\t")[1] for line in b.splitlines()] for b in cli.strip().split("\n\n")]
            assert [o["tags"] for o in out] == blocks
        else:
            cli = task.predict_inputs(Inputs(data=tmp_path / "in.txt")).splitlines()
            assert [o["translation"] for o in out] == cli


def test_predict_lm_equals_generate(tmp_path):
    run = lm_run(tmp_path)
    task = load(run, "cpu")
    expected = task.generate("the ", 20, SamplingConfig(temperature=0.8), seed=3)
    with client(run) as c:
        body = {"inputs": [{"text": "the ", "length": 20}], "sampling": {"temperature": 0.8, "seed": 3}}
        assert c.post("/v1/predict", json=body).json()["outputs"] == [{"text": expected}]


def test_observe_seq_retry_gap_stale_get_delete(tmp_path):
    with client(lm_run(tmp_path)) as c:
        first = c.post("/v1/streams/s-1/observe", json={"text": "th", "seq": 1}).json()
        assert (first["seq"], first["steps"], first["replayed"]) == (1, 2, False)
        retry = c.post("/v1/streams/s-1/observe", json={"text": "th", "seq": 1}).json()
        assert retry == {**first, "replayed": True}
        assert c.get("/v1/streams/s-1").json()["steps"] == 2  # the retry did not step again
        gap = c.post("/v1/streams/s-1/observe", json={"text": "e", "seq": 3})
        assert gap.status_code == 409 and gap.json()["expected"] == 2 and gap.json()["field"] == "seq"
        assert c.post("/v1/streams/s-1/observe", json={"text": "e", "seq": 2}).status_code == 200
        stale = c.post("/v1/streams/s-1/observe", json={"text": "e", "seq": 1})
        assert stale.status_code == 409 and stale.json()["expected"] == 3
        # no seq: applied, and counted, so seq-using clients can continue
        assert c.post("/v1/streams/s-1/observe", json={"token": " "}).json()["seq"] == 3
        info = c.get("/v1/streams/s-1").json()
        assert (info["seq"], info["steps"]) == (3, 4)
        assert c.delete("/v1/streams/s-1").json() == {"stream": "s-1", "deleted": True}
        assert c.get("/v1/streams/s-1").status_code == 404
        assert c.delete("/v1/streams/s-1").status_code == 404
        assert c.post("/v1/streams/s-1/observe", json={"text": "a", "seq": 1}).json()["steps"] == 1
        metrics = c.get("/metrics").text
        assert 'rnnkit_requests_total{endpoint="/v1/streams/{id}/observe",status="409"} 2.0' in metrics
        assert "rnnkit_streams 1.0" in metrics and "rnnkit_batch_size_count" in metrics


def test_idle_streams_expire_with_a_clear_404(tmp_path):
    with client(lm_run(tmp_path), idle_ttl=0.3) as c:
        assert c.post("/v1/streams/idle/observe", json={"text": "ab"}).status_code == 200
        time.sleep(0.5)
        r = c.get("/v1/streams/idle")
        assert r.status_code == 404 and "expired after 0.3 s" in r.json()["detail"]
        r = c.post("/v1/streams/idle/observe", json={"text": "c", "seq": 2})
        assert r.status_code == 404 and "start it anew" in r.json()["detail"]
        again = c.post("/v1/streams/idle/observe", json={"text": "c", "seq": 1}).json()
        assert (again["seq"], again["steps"]) == (1, 1)


def test_api_key(tmp_path):
    with client(lm_run(tmp_path), api_key="s3cret") as c:
        assert c.get("/healthz").status_code == 200
        for path in ("/v1/model", "/metrics", "/docs", "/openapi.json", "/v1/streams/a"):
            r = c.get(path)
            assert r.status_code == 401 and r.json()["field"] == "authorization", path
        assert c.get("/v1/model", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/v1/streams/a/observe", json={"text": "a"}).status_code == 401
        assert c.get("/v1/model", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        r = c.post("/v1/streams/a/observe", json={"text": "a"}, headers={"X-API-Key": "s3cret"})
        assert r.status_code == 200


def test_bad_requests_are_4xx_naming_the_field(tmp_path):
    with client(lm_run(tmp_path), limits=_small_limits()) as c:
        cases = [
            ("/v1/streams/a/observe", {"text": "x" * 10_001}, 422, "body.text"),
            ("/v1/streams/a/observe", {"tokens": ["a"] * 257}, 422, "body.tokens"),
            ("/v1/streams/a/observe", {"text": "a", "colour": 1}, 422, "body.colour"),
            ("/v1/streams/a/observe", {"text": "a", "seq": 0}, 422, "body.seq"),
            ("/v1/streams/a/observe", {}, 422, "token"),
            ("/v1/streams/a/observe", {"text": "a", "row": {"y": 1}}, 422, "row"),
            ("/v1/streams/" + "x" * 129 + "/observe", {"text": "a"}, 422, "path.stream_id"),
            ("/v1/streams/a%20b/observe", {"text": "a"}, 422, "path.stream_id"),
            ("/v1/predict", {"inputs": []}, 422, "body.inputs"),
            ("/v1/predict", {"inputs": [{"text": "a", "length": 100_000}]}, 422, "body.inputs.0.length"),
        ]
        for path, body, status, field in cases:
            r = c.post(path, json=body)
            assert r.status_code == status and r.json()["field"] == field, (path, body, r.text)
        r = c.post("/v1/streams/a/observe", content=b'{"text": "' + b"a" * 30_000 + b'"}')
        assert r.status_code == 413 and r.json()["field"] == "body"
        r = c.post("/v1/streams/a/observe", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        # a decoded slash splits the id into path segments: no route has that shape, nothing is read (404)
        r = c.get("/v1/streams/..%2F..%2Fetc%2Fpasswd")
        assert (r.status_code, r.json()) == (404, {"detail": "Not Found", "field": None})
        r = c.get("/v1/streams/%2E%2E")  # one segment, not a stream id
        assert r.status_code == 422 and r.json()["field"] == "path.stream_id"
    with client(tag_run(tmp_path / "bi", bidirectional=True)) as c:
        r = c.post("/v1/streams/a/observe", json={"token": "the"})
        assert r.status_code == 400 and "/v1/predict" in r.json()["detail"]
        r = c.post("/v1/predict", json={"inputs": [{"rows": [{"y": 1}]}]})
        assert r.status_code == 422 and r.json()["field"] == "inputs[0].text"


def _small_limits():
    from rnnkit.serve import Limits

    return Limits(max_body_bytes=20_000)


def test_max_streams_refuses_new_streams_with_a_429(tmp_path):
    with client(lm_run(tmp_path), max_streams=2) as c:
        assert c.post("/v1/streams/a/observe", json={"text": "a"}).status_code == 200
        assert c.post("/v1/streams/b/observe", json={"text": "a"}).status_code == 200
        r = c.post("/v1/streams/c/observe", json={"text": "a"})
        assert r.status_code == 429 and r.json()["field"] == "stream", r.text
        assert "--max-streams" in r.json()["detail"] and "\n" not in r.json()["detail"]
        assert c.post("/v1/streams/a/observe", json={"text": "b"}).status_code == 200  # existing streams go on
        assert "rnnkit_streams 2.0" in c.get("/metrics").text
        assert c.delete("/v1/streams/a").status_code == 200
        assert c.post("/v1/streams/c/observe", json={"text": "a"}).status_code == 200


def test_tombstones_are_purged_after_tombstone_ttl(tmp_path):
    with client(lm_run(tmp_path), idle_ttl=0.2, tombstone_ttl=0.2) as c:
        assert c.post("/v1/streams/t/observe", json={"text": "ab"}).status_code == 200
        store = c.app.app.state.store
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (store.get("t") and store.get("t").expired):
            time.sleep(0.02)
        assert store.get("t").expired  # first a tombstone: the next call hears it expired
        while time.monotonic() < deadline and store.get("t") is not None:
            time.sleep(0.02)
        assert store.get("t") is None  # then gone
        assert c.get("/v1/streams/t").status_code == 404


def test_every_limit_is_read_from_the_config(tmp_path):
    from rnnkit.serve import Limits

    tiny = Limits(max_chunk=2, max_text=5, max_top=1, max_items=1, max_generate=3, max_rows=9)
    lm, fc = lm_run(tmp_path / "lm"), forecast_run(tmp_path / "fc")
    rows = series(10).to_dict("records")
    over = [
        (lm, "/v1/streams/a/observe", {"tokens": ["a", "b", "c"]}, "body.tokens"),
        (lm, "/v1/streams/a/observe", {"text": "abcdef"}, "body.text"),
        (lm, "/v1/streams/a/observe", {"text": "abc"}, "text"),  # 3 tokens: over max_chunk once tokenised
        (lm, "/v1/streams/a/observe", {"text": "a", "top": 2}, "body.top"),
        (lm, "/v1/predict", {"inputs": [{"text": "a"}, {"text": "b"}]}, "body.inputs"),
        (lm, "/v1/predict", {"inputs": [{"text": "abcdef", "length": 1}]}, "body.inputs.0.text"),
        (lm, "/v1/predict", {"inputs": [{"text": "a", "length": 4}]}, "body.inputs.0.length"),
        (lm, "/v1/predict", {"inputs": [{"text": "a"}]}, "inputs"),  # the default length (50) is over max_generate
        (fc, "/v1/streams/f/observe", {"rows": rows[:3]}, "body.rows"),
        (fc, "/v1/predict", {"inputs": [{"rows": rows}]}, "body.inputs.0.rows"),
    ]
    at_limit = [
        (lm, "/v1/streams/a/observe", {"tokens": ["a", "b"], "top": 1}),
        (lm, "/v1/streams/a/observe", {"text": "ab"}),
        (lm, "/v1/predict", {"inputs": [{"text": "abcde", "length": 3}]}),
        (fc, "/v1/streams/f/observe", {"rows": rows[:2]}),
        (fc, "/v1/predict", {"inputs": [{"rows": rows[:9]}]}),
    ]
    for run in (lm, fc):
        with client(run, limits=tiny) as c:
            for _, path, body, field in (x for x in over if x[0] == run):
                r = c.post(path, json=body)
                assert r.status_code == 422 and r.json()["field"] == field, (path, body, r.text)
            for _, path, body in (x for x in at_limit if x[0] == run):
                r = c.post(path, json=body)
                assert r.status_code == 200, (path, body, r.text)
    # and limits above the defaults are honoured too
    with client(lm, limits=Limits(max_chunk=300)) as c:
        assert c.post("/v1/streams/b/observe", json={"tokens": ["a"] * 300}).status_code == 200


def test_translator_work_per_request_is_capped(tmp_path):
    from rnnkit.serve import Limits

    five = "the quick brown fox jumps"
    limits = Limits(max_source_tokens=5, max_decode_work=60, max_beam=4)
    with client(translate_run(tmp_path), limits=limits) as c:
        r = c.post("/v1/predict", json={"inputs": [{"text": "a"}, {"text": five + " over"}]})
        assert r.status_code == 422 and r.json()["field"] == "inputs[1].text", r.text
        assert "max_source_tokens" in r.json()["detail"]
        # (5 + 10 decode steps) x beam 2 x 3 inputs = 90 > 60
        r = c.post("/v1/predict", json={"inputs": [{"text": five}] * 3, "beam": 2})
        assert r.status_code == 413 and r.json()["field"] == "inputs", r.text
        assert "max_decode_work" in r.json()["detail"] and "beam" in r.json()["detail"]
        r = c.post("/v1/predict", json={"inputs": [{"text": five}] * 2, "beam": 5})
        assert r.status_code == 422 and r.json()["field"] == "body.beam", r.text
        assert c.post("/v1/predict", json={"inputs": [{"text": five}] * 2, "beam": 2}).status_code == 200


def test_predict_runs_on_a_bounded_pool_and_refuses_beyond_its_queue(tmp_path):
    import asyncio
    import threading

    import httpx

    from rnnkit.serve import create_app

    run = translate_run(tmp_path)
    task = load(run, "cpu")
    lock, running, peak = threading.Lock(), [0], [0]
    original = task.translate

    def slow(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return original(*args, **kwargs)

    task.translate = slow
    app = create_app(ServeConfig(run, predict_threads=1, predict_queue=1), task=task)

    async def main() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app.state.guarded)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve", timeout=30) as c:
                body = {"inputs": [{"text": "the fox"}]}
                return await asyncio.gather(*(c.post("/v1/predict", json=body) for _ in range(5)))

    answers = asyncio.run(main())
    assert peak[0] == 1  # one at a time
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 503, 503, 503], [r.text for r in answers]
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "--predict-threads" in busy.json()["detail"]


def test_model_info_of_a_global_forecaster(tmp_path):
    from _serve_runs import panel, panel_forecast_run

    with client(panel_forecast_run(tmp_path)) as c:
        info = c.get("/v1/model").json()
        assert info["streams"] is True and "store" in info["streaming"]
        assert info["facts"]["series"] == ["a", "b", "c"] and info["facts"]["static"] == ["size", "kind"]
        assert "'store'" in info["observe"][0]["description"] and info["outputs"][0]["name"] == "store"
        row = panel().iloc[0].to_dict()
        assert c.post("/v1/streams/a/observe", json={"row": row}).json()["answer"] == {"ready": False, "needed": 7}
