"""Stateless answers (``POST /v1/predict``: the same as ``rnnkit predict`` / ``generate``) and what a served
model takes and gives (``GET /v1/model``)."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from ..decoding import SamplingConfig
from ..tasks.base import Task
from .config import Limits
from .schemas import PredictItem, PredictRequest
from .streaming import RequestError, Streamer


def _field(name: str, type_: str, description: str = "") -> dict[str, str]:
    return {"name": name, "type": type_, "description": description}


def describe(task: Task, streamer: Streamer) -> dict[str, Any]:
    """The task, the fields ``observe`` and ``predict`` read, the output fields and the facts of the model."""
    name, cfg = task.name, task.cfg
    facts: dict[str, Any] = {}
    observe: list[dict[str, str]] = []
    outputs: list[dict[str, str]] = []
    if name == "forecast":
        s = cfg.series
        ident = [s.series_id] if s.series_id else []
        cols = [*([s.time_column] if s.time_column else []), *ident, *s.static, *s.target, *s.past_covariates]
        facts = {
            "targets": s.target,
            "time_column": s.time_column,
            "series_id": s.series_id,
            "series": sorted(task.scalers) if s.series_id else None,  # type: ignore[attr-defined]
            "static": s.static,
            "past_covariates": s.past_covariates,
            "future_covariates": s.future_covariates,
            "calendar": s.calendar,
            "timestep": s.timestep,
            "horizon": s.horizon,
            "quantiles": list(cfg.quantiles or []),
            "missing": s.missing,
        }
        what = "time: ISO date; series id and statics: as in training; others: numbers"
        observe = [_field("row", "object", f"one row with the columns {cols} ({what})")]
        observe.append(_field("rows", "array of objects", "several rows, oldest first"))
        predict = [_field("rows", "array of objects", f"the series: rows with the columns {cols}, oldest first")]
        outputs = [_field(c, "string", "the series") for c in ident]
        outputs += [_field(t, "number", "point forecast per horizon step") for t in s.target]
        outputs += [_field(f"{t}_q{q:g}", "number", "quantile") for t in s.target for q in cfg.quantiles or ()]
    elif name == "lm":
        facts = {"level": cfg.level, "vocab_size": len(task.vocab), "lowercase": cfg.lowercase}  # type: ignore[attr-defined]
        observe = [
            _field("text", "string", "text, tokenised by the model's tokenizer"),
            _field("token", "string", "one vocabulary token"),
            _field("tokens", "array of strings", "vocabulary tokens"),
        ]
        predict = [_field("text", "string", "prompt"), _field("length", "integer", "tokens to generate")]
        outputs = [_field("next", "array of {token, p}", "observe: likely next tokens"), _field("text", "string")]
    elif name == "tag":
        facts = {"tags": task.tags, "vocab_size": len(task.vocab), "crf": cfg.crf}  # type: ignore[attr-defined]
        facts["bidirectional"] = cfg.rnn.bidirectional
        observe = [_field("token", "string"), _field("tokens", "array of strings")]
        predict = [_field("tokens", "array of strings"), _field("text", "string", "whitespace-separated tokens")]
        outputs = [_field("tags", "array of strings", "one tag per token")]
    elif name == "classify":
        facts = {"labels": task.labels, "vocab_size": len(task.vocab), "level": cfg.level}  # type: ignore[attr-defined]
        predict = [_field("text", "string")]
        outputs = [_field("label", "string"), _field("probabilities", "object", "label -> probability")]
    elif name == "translate":
        facts = {"beam_size": cfg.beam_size, "src_vocab": len(task.src_vocab), "tgt_vocab": len(task.tgt_vocab)}  # type: ignore[attr-defined]
        predict = [_field("text", "string", "a source sentence")]
        outputs = [_field("translation", "string")]
    else:  # a registered task the server does not know: whole inputs only, as the CLI would take them
        predict = []
    return {
        "task": name,
        "streams": streamer.streams,
        "streaming": streamer.describe,
        "observe": observe if streamer.streams else [],
        "predict": predict,
        "outputs": outputs,
        "facts": facts,
    }


def _need(item: PredictItem, i: int, field: str) -> Any:
    value = getattr(item, field)
    if value is None or value == "":
        raise RequestError(f"inputs[{i}].{field}", f"each input needs {field!r} for this model")
    return value


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite numbers become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def forecast_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A forecaster's table as JSON rows (ISO times, null for a non-finite number): predict's and a stream's."""
    records = json.loads(table.to_json(orient="records", date_format="iso"))
    return [{k: _clean(v) for k, v in r.items()} for r in records]


def check_decode_work(task: Task, texts: list[str], beam: int | None, limits: Limits) -> None:
    """Refuse a translation request whose decoding would hold a thread too long: a source over
    ``max_source_tokens`` (422; decoding runs to 10 tokens past the source length) or, over all inputs,
    (source tokens + 10) x beam over ``max_decode_work`` (413)."""
    beam = beam or task.cfg.beam_size
    total = 0
    for i, text in enumerate(texts):
        n = max(1, len(task.src_tok.tokenize(task._prep(text))))  # type: ignore[attr-defined]
        if n > limits.max_source_tokens:
            raise RequestError(
                f"inputs[{i}].text",
                f"at most {limits.max_source_tokens} source tokens per input (max_source_tokens), got {n}",
            )
        total += (n + 10) * beam
    if total > limits.max_decode_work:
        raise RequestError(
            "inputs",
            f"this request needs {total} decoding steps (source tokens + 10 per input, times beam {beam}); at most "
            f"{limits.max_decode_work} per request (max_decode_work): send fewer or shorter inputs, or a smaller beam",
            status=413,
        )


def predict(task: Task, req: PredictRequest, limits: Limits | None = None) -> list[dict[str, Any]]:
    """One output per input, as the CLI gives them (raises RequestError for a bad input or one over ``limits``)."""
    limits = limits or Limits()
    name = task.name
    try:
        if name == "forecast":
            out = []
            for i, item in enumerate(req.inputs):
                rows = _need(item, i, "rows")
                try:
                    table = task.predict(pd.DataFrame(rows))  # type: ignore[attr-defined]
                except (ValueError, TypeError, KeyError, OverflowError) as exc:
                    message = str(exc).splitlines()[0] if str(exc) else "bad rows"
                    raise RequestError(f"inputs[{i}].rows", message) from None
                out.append({"forecast": forecast_records(table)})
            return out
        if name == "classify":
            texts = [_need(item, i, "text") for i, item in enumerate(req.inputs)]
            probs = task.predict_proba(texts)  # type: ignore[attr-defined]
            labels = task.labels  # type: ignore[attr-defined]
            return [
                {"label": labels[int(p.argmax())], "probabilities": {n: float(v) for n, v in zip(labels, p)}}
                for p in probs
            ]
        if name == "tag":
            sentences = []
            for i, item in enumerate(req.inputs):
                tokens = item.tokens if item.tokens is not None else str(_need(item, i, "text")).split()
                if not tokens:
                    raise RequestError(f"inputs[{i}].text", "the text has no tokens")
                sentences.append(tokens)
            return [{"tags": tags} for tags in task.predict(sentences)]  # type: ignore[attr-defined]
        if name == "translate":
            texts = [_need(item, i, "text") for i, item in enumerate(req.inputs)]
            check_decode_work(task, texts, req.beam, limits)
            return [{"translation": t} for t in task.translate(texts, req.beam)]  # type: ignore[attr-defined]
        if name == "lm":
            s = req.sampling
            sampling = SamplingConfig(s.temperature, s.top_k, s.top_p) if s else SamplingConfig()
            seed = s.seed if s else None
            total = sum(item.length or 50 for item in req.inputs)
            if total > limits.max_generate:
                raise RequestError(
                    "inputs", f"at most {limits.max_generate} tokens per request in all (length), asked for {total}"
                )
            return [
                {"text": task.generate(item.text or "", item.length or 50, sampling, seed)}  # type: ignore[attr-defined]
                for item in req.inputs
            ]
    except RequestError:
        raise
    except ValueError as exc:  # the task's own one-line message about the input
        raise RequestError("inputs", str(exc).splitlines()[0] if str(exc) else "bad input") from None
    raise RequestError(None, f"the server cannot predict with a {name!r} model", status=400)
