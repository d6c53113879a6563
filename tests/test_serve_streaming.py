"""Stream answers equal offline answers on the same history, for every task that streams; others refuse."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("fastapi")

from _serve_runs import TEXT, forecast_run, lm_run, next_token_probs, panel, panel_forecast_run, series, tag_run
from rnnkit.serve.engine import Engine, Observation
from rnnkit.serve.schemas import ObserveRequest
from rnnkit.serve.store import SQLiteStore
from rnnkit.serve.streaming import RequestError, streamer_for
from rnnkit.tasks import load


def _engine(task, tmp_path):
    return Engine(streamer_for(task), SQLiteStore(tmp_path / "streams.db"))


def _observe(engine, stream, **fields):
    req = ObserveRequest(**fields)
    inputs, steps = engine.streamer.parse(req)
    (out,) = engine.run([Observation(stream, req.seq, inputs, steps, req)])
    assert out.status == 200, out.body
    return out.body


@pytest.mark.parametrize("cell", ["lstm", "gru", "mingru"])
def test_lm_stream_equals_offline_forward(tmp_path, cell):
    task = load(lm_run(tmp_path, cell=cell), "cpu")
    engine = _engine(task, tmp_path)
    text = TEXT[:40]
    ids = task.ids(text)
    with torch.no_grad():
        logits, _ = task.model(torch.tensor([ids]))
    offline = next_token_probs(task, logits[0])  # (T, V): the next-token distribution after each prefix
    V = offline.shape[-1]
    # single observations, a chunk, single again: two streams stepped in the same batches
    pieces = [text[:10], *text[10:13], text[13:30], *text[30:]]
    t = 0
    for piece in pieces:
        a = _observe(engine, "a", text=piece, top=V)
        t += len(task.ids(piece))
        got = torch.zeros(V)
        for entry in a["answer"]["next"]:
            got[task.vocab.stoi[entry["token"]]] = entry["p"]
        torch.testing.assert_close(got, offline[t - 1], atol=2e-6, rtol=1e-5)
        assert a["steps"] == t
    assert engine.store.get("a").seq == len(pieces)


def test_lm_batch_of_streams_equals_each_alone(tmp_path):
    task = load(lm_run(tmp_path), "cpu")
    engine = _engine(task, tmp_path)
    texts = ["the fox", "a lazy dog jumps", "quick"]
    # all three streams in every batch, chunks of different lengths in one batch
    for k in range(0, 16, 4):
        items = []
        for s, text in enumerate(texts):
            piece = text[k : k + 4 - s % 2]
            if piece:
                req = ObserveRequest(text=piece, top=3)
                inputs, steps = engine.streamer.parse(req)
                items.append(Observation(f"s{s}", None, inputs, steps, req))
        for out in engine.run(items):
            assert out.status == 200
    for s, text in enumerate(texts):
        seen = "".join(text[k : k + 4 - s % 2] for k in range(0, 16, 4))
        with torch.no_grad():
            logits, _ = task.model(torch.tensor([task.ids(seen)]))
        best = next_token_probs(task, logits[0, -1]).topk(3)
        answer = json.loads(engine.store.get(f"s{s}").answer)["answer"]["next"]
        assert [e["token"] for e in answer] == [task.vocab.itos[int(i)] for i in best.indices]
        torch.testing.assert_close(torch.tensor([e["p"] for e in answer]), best.values, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("crf", [True, False])
def test_tag_stream_equals_predict_on_each_prefix(tmp_path, crf):
    task = load(tag_run(tmp_path, crf=crf), "cpu")
    engine = _engine(task, tmp_path)
    words = ["the", "lazy", "dog", "jumps", "over", "the", "quick", "brown", "fox", "unknownword"]
    streamed = []
    streamed += _observe(engine, "s", tokens=words[:3])["answer"]["tags"]
    for w in words[3:6]:
        streamed += _observe(engine, "s", token=w)["answer"]["tags"]
    streamed += _observe(engine, "s", tokens=words[6:])["answer"]["tags"]
    expected = [task.predict([words[: t + 1]])[0][-1] for t in range(len(words))]
    assert streamed == expected
    if not crf:  # unidirectional without a CRF: the stream gives the whole sentence's tags too
        assert streamed == task.predict([words])[0]
    assert len(set(expected)) > 1  # the check has teeth: not one constant tag


def test_forecast_stream_equals_predict_on_history(tmp_path):
    task = load(forecast_run(tmp_path), "cpu")
    engine = _engine(task, tmp_path)
    frame = series(30)
    rows = frame.to_dict("records")
    T = task.cfg.series.timestep
    for i, row in enumerate(rows[:12]):
        answer = _observe(engine, "s", row=row)["answer"]
        if i + 1 < T:
            assert answer == {"ready": False, "needed": T - i - 1}
            continue
        expected = task.predict(pd.DataFrame(rows[: i + 1]))
        got = pd.DataFrame(answer["forecast"])
        assert list(got.columns) == list(expected.columns)
        assert (pd.to_datetime(got["date"]) == expected["date"]).all()
        for col in expected.columns[1:]:
            assert got[col].to_numpy() == pytest.approx(expected[col].to_numpy(), rel=1e-5, abs=1e-6)
    # a chunk answers from its last row
    answer = _observe(engine, "s", rows=rows[12:20])["answer"]
    expected = task.predict(pd.DataFrame(rows[:20]))
    assert pd.DataFrame(answer["forecast"])["y"].to_numpy() == pytest.approx(expected["y"].to_numpy(), rel=1e-5)


def test_forecast_stream_refuses_bad_rows(tmp_path):
    task = load(forecast_run(tmp_path), "cpu")
    engine = _engine(task, tmp_path)
    parse = engine.streamer.parse
    with pytest.raises(RequestError) as err:
        parse(ObserveRequest(row={"date": "2024-01-01", "y": 1.0}))
    assert err.value.field == "row.x"
    with pytest.raises(RequestError) as err:
        parse(ObserveRequest(rows=[{"date": "2024-01-01", "y": 1.0, "x": 0.0}, {"date": "x", "y": 1.0, "x": 0.0}]))
    assert err.value.field == "rows[1].date"
    with pytest.raises(RequestError) as err:
        parse(ObserveRequest(row={"date": "2024-01-01", "y": 1e300, "x": 0.0}))
    assert err.value.field == "row.y"
    with pytest.raises(RequestError) as err:
        parse(ObserveRequest(token="a"))
    assert err.value.field == "token"
    _observe(engine, "s", row={"date": "2024-01-05", "y": 1.0, "x": 0.0})
    req = ObserveRequest(row={"date": "2024-01-04", "y": 1.0, "x": 0.0})
    (out,) = engine.run([Observation("s", None, *parse(req), req)])
    assert out.status == 422 and "after the previous row" in out.body["detail"]
    req = ObserveRequest(row={"date": "2024-01-06T00:00:00+01:00", "y": 1.0, "x": 0.0})  # found by the fuzz: a 503
    (out,) = engine.run([Observation("s", None, *parse(req), req)])
    assert out.status == 422 and out.body["field"] == "row.date" and "time zone" in out.body["detail"]
    assert engine.store.get("s").steps == 1  # a refused row changes nothing


@pytest.mark.parametrize("make", ["bidirectional_tagger", "classifier"])
def test_whole_input_models_refuse_to_stream(tmp_path, make):
    if make == "bidirectional_tagger":
        task = load(tag_run(tmp_path, bidirectional=True), "cpu")
    else:
        from rnnkit.data.text import Vocab, make_tokenizer
        from rnnkit.tasks.classify import Classifier, ClassifyConfig

        cfg = ClassifyConfig()
        model = Classifier.build_model(cfg, 10, 2)
        task = Classifier(cfg, model, Vocab.build([["a"]]), make_tokenizer("word"), ["a", "b"])
    streamer = streamer_for(task)
    assert not streamer.streams
    with pytest.raises(RequestError) as err:
        streamer.parse(ObserveRequest(token="the"))
    assert err.value.status == 400 and "/v1/predict" in str(err.value)


def test_lm_stream_never_lists_or_draws_special_tokens(tmp_path):
    from rnnkit.data.text import SPECIALS

    task = load(lm_run(tmp_path), "cpu")
    with torch.no_grad():  # make the special tokens the most likely ones by far
        task.model.head.net[1].bias[: len(SPECIALS)] += 20.0
    engine = _engine(task, tmp_path)
    V = len(task.vocab)
    for k, sample in enumerate([{"temperature": 0}, {"temperature": 1.0, "seed": 3}]):
        answer = _observe(engine, f"s{k}", text="the ", top=V, sample=sample)["answer"]
        listed = [e["token"] for e in answer["next"]]
        assert not set(listed) & set(SPECIALS) and answer["sample"] not in SPECIALS
        assert len(listed) == V - len(SPECIALS)  # `top` lists what a draw can give: every other token
        assert sum(e["p"] for e in answer["next"]) == pytest.approx(1.0, abs=1e-5)


def _same_forecast(answer: list[dict], expected: pd.DataFrame) -> None:
    """A stream's forecast rows against ``predict``'s table: the same columns, times and series, equal numbers."""
    got = pd.DataFrame(answer)
    assert list(got.columns) == list(expected.columns)
    for col in expected.columns:
        if col == "date":
            assert (pd.to_datetime(got[col]) == pd.to_datetime(expected[col])).all(), (got[col], expected[col])
        elif not pd.api.types.is_numeric_dtype(expected[col]):
            assert got[col].tolist() == expected[col].tolist()
        else:
            assert got[col].to_numpy() == pytest.approx(expected[col].to_numpy(), rel=1e-5, abs=1e-6)


def test_forecast_stream_of_a_global_model_equals_predict(tmp_path):
    """--series-id: per-series scalers and static covariates, one series per stream, two streams in each batch."""
    task = load(panel_forecast_run(tmp_path), "cpu")
    streamer = streamer_for(task)
    assert streamer.streams
    engine = Engine(streamer, SQLiteStore(tmp_path / "streams.db"))
    table = panel()
    rows = {k: table[table["store"] == k].to_dict("records") for k in "bc"}
    for i in range(12):
        items = []
        for k in "bc":
            row = rows[k][i] if k == "b" or i == 0 else {c: v for c, v in rows[k][i].items() if c != "size"}
            req = ObserveRequest(row=row)  # a static may be left out once the stream has it
            items.append(Observation(k, None, *streamer.parse(req), req))
        for k, out in zip("bc", engine.run(items)):
            assert out.status == 200, out.body
            if i + 1 >= 8:
                _same_forecast(out.body["answer"]["forecast"], task.predict(pd.DataFrame(rows[k][: i + 1])))
    # the series are really told apart: their forecasts are in their own units
    assert abs(out.body["answer"]["forecast"][0]["y"]) > 10


def test_forecast_stream_of_a_global_model_refuses_what_predict_cannot_match(tmp_path):
    task = load(panel_forecast_run(tmp_path), "cpu")
    engine = _engine(task, tmp_path)
    parse = engine.streamer.parse
    row = panel().iloc[0].to_dict()  # series a
    for bad, field, words in (
        ({**row, "store": "z"}, "row.store", "/v1/predict"),  # not trained on: its scaler is not known
        ({k: v for k, v in row.items() if k != "store"}, "row.store", "missing"),
    ):
        with pytest.raises(RequestError) as err:
            parse(ObserveRequest(row=bad))
        assert err.value.field == field and words in str(err.value)
    _observe(engine, "s", row=row)
    later = {**panel().iloc[1].to_dict()}
    for bad, field, words in (
        ({**later, "store": "b"}, "row.store", "one series"),
        ({**later, "kind": "street"}, "row.kind", "one value per series"),
    ):
        req = ObserveRequest(row=bad)
        (out,) = engine.run([Observation("s", None, *parse(req), req)])
        assert out.status == 422 and out.body["field"] == field and words in out.body["detail"], out.body
    assert engine.store.get("s").steps == 1


@pytest.mark.parametrize("gap_rows_back", [150, 260])
def test_forecast_stream_dates_its_forecast_as_predict_does(tmp_path, gap_rows_back):
    """A monthly series with one missing month: within the rows predict reads for the frequency (no regular
    frequency: the median step) or before them (month starts), the stream's timestamps are predict's."""
    task = load(forecast_run(tmp_path), "cpu")
    engine = _engine(task, tmp_path)
    dates = pd.date_range("1990-03-01", periods=300, freq="MS")  # the last: 1 February 2015
    dates = dates.delete(len(dates) - gap_rows_back)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "y": np.linspace(1, 3, len(dates)), "x": 0.5})
    rows = frame.to_dict("records")
    for start in range(0, len(rows) - 1, 200):
        _observe(engine, "m", rows=rows[start : min(start + 200, len(rows) - 1)])
    answer = _observe(engine, "m", row=rows[-1])["answer"]["forecast"]
    expected = task.predict(frame)
    _same_forecast(answer, expected)
    first = "2015-03-01" if gap_rows_back > 200 else "2015-03-04"  # month start, or 1 February + the median 31 days
    assert expected["date"].iloc[0] == pd.Timestamp(first)


def test_freq_rows_is_what_the_frequency_inference_reads():
    """FREQ_ROWS pins how far back infer_offset looks: if that changes, streams must keep as many rows."""
    from rnnkit.data.frequency import infer_offset
    from rnnkit.serve.forecast_stream import FREQ_ROWS

    days = pd.Series(pd.date_range("2020-01-01", periods=FREQ_ROWS + 5, freq="D"))
    outside = days.drop(index=4).reset_index(drop=True)  # a gap just older than the last FREQ_ROWS rows
    inside = days.drop(index=5).reset_index(drop=True)  # a gap among them
    assert infer_offset(outside) is not None and infer_offset(inside) is None
