"""Forecaster streams: a stream is one series observed a row at a time.

The forecaster is a window model (it reads the last ``timestep`` rows afresh for every forecast), so a stream's
state is rows, not an RNN state: the last ``timestep`` rows, and at least the last :data:`FREQ_ROWS` when there
is a time column (the future timestamps come from the frequency :func:`~rnnkit.data.frequency.infer_offset` reads
in that many recent rows, so a stream that kept fewer could date its forecast differently from ``predict``).
Each observe appends its row(s) and, once there are ``timestep`` rows, answers what :meth:`Forecaster.predict`
gives on the stream's history: the rows go through the forecaster's own preparation
(:func:`~rnnkit.data.encoding.parse_times`, :func:`~rnnkit.data.panel.split_series`,
:meth:`Forecaster.window_inputs`: missing values, the series' own scaler, static covariates, calendar features,
future timestamps); the model runs once for all the streams of a batch.

A global model (``--series-id``) streams a series it was trained on: each row names it in the series-id column
(one series per stream) and gives its static covariates (the first non-empty value of each is kept, as
``predict`` takes it); a series it has not seen would be scaled on its whole history, which a stream does not
keep, so it is refused with a pointer to ``/v1/predict``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.encoding import parse_times
from ..data.panel import split_series
from ..tasks.base import Task
from ..tasks.forecast_report import unscale
from .config import Limits
from .predict import forecast_records
from .schemas import ObserveRequest
from .streaming import RequestError, StepResult, Streamer, one_of

#: the largest magnitude accepted for a value (beyond it the scaled inputs and the answers lose all meaning)
MAX_VALUE = 1e15
#: recent rows :func:`rnnkit.data.frequency.infer_offset` reads to find the frequency (pinned by a test)
FREQ_ROWS = 200


class ForecastStreamer(Streamer):
    """Windows of rows; the answer is :meth:`Forecaster.predict` of the stream's history, batched across streams."""

    streams = True
    fields = ("row", "rows")
    describe = (
        "a stream is a series observed row by row: the server keeps its recent rows and, once it has `timestep` "
        "of them, answers the forecast of the next `horizon` steps with its interval, as predict does on the "
        "stream's history"
    )

    @classmethod
    def for_task(cls, task: Task, limits: Limits | None = None) -> Streamer:
        if task.cfg.series.future_covariates:
            return Streamer(
                task,
                "this forecaster needs known-future covariates for every forecast, which a stream of rows does not "
                "give; POST the series with the future rows to /v1/predict",
            )
        return cls(task, limits)

    def __init__(self, task: Task, limits: Limits | None = None) -> None:
        super().__init__(task, limits=limits)
        cfg = task.cfg.series
        self.series = cfg
        self.numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates]))
        self.stored = [*([cfg.time_column] if cfg.time_column else []), *self.numeric]  # kept per row
        self.ident = [cfg.series_id] if cfg.series_id else []
        self.columns = [*self.stored[:1], *self.ident, *cfg.static, *self.stored[1:]]  # what a row may have
        self.keep = max(cfg.timestep, FREQ_ROWS) if cfg.time_column else cfg.timestep
        if cfg.series_id:
            self.describe += (
                f"; a stream is one of the series the model was trained on, named in the column {cfg.series_id!r} "
                "of every row"
            )

    # ---- one request ----------------------------------------------------------------------------------------
    def parse(self, req: ObserveRequest) -> tuple[list[dict[str, Any]], int]:
        kind, value = one_of(req, self.fields)
        rows = [value] if kind == "row" else value
        cfg = self.series
        clean = []
        for i, row in enumerate(rows):
            where = "row" if kind == "row" else f"rows[{i}]"
            extra = sorted(set(row) - set(self.columns))
            if extra:
                raise RequestError(f"{where}.{extra[0]}", f"unknown column {extra[0]!r}; expected {self.columns}")
            out: dict[str, Any] = {}
            for col in self.columns:
                v = row.get(col)
                if col in cfg.static:  # may be empty: predict takes the first non-empty value of the series
                    if v is not None and (isinstance(v, bool) or not _scalar(v)):
                        raise RequestError(f"{where}.{col}", f"static covariate {col!r} must be a string or a number")
                elif v is None:
                    raise RequestError(f"{where}.{col}", f"missing value for column {col!r}; expected {self.columns}")
                elif col == cfg.time_column:
                    if isinstance(v, bool) or not _scalar(v) or pd.isna(pd.to_datetime(v, errors="coerce")):
                        raise RequestError(f"{where}.{col}", f"{col!r} must be a date/time, got {v!r}")
                elif col == cfg.series_id:
                    v = self._series(v, f"{where}.{col}")
                elif not _number(v):
                    raise RequestError(f"{where}.{col}", f"{col!r} must be a finite number (|x| <= 1e15), got {v!r}")
                out[col] = v
            clean.append(out)
        return clean, len(clean)

    def _series(self, value: Any, field: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RequestError(field, f"the series id must be a string or an integer, got {value!r}")
        name = str(value)
        if name not in self.task.scalers:  # type: ignore[attr-defined]
            raise RequestError(
                field,
                f"series {name!r} was not in the training data: its scaler would be fitted on its whole history, "
                "which a stream does not keep; forecast it with /v1/predict",
            )
        return name

    # ---- a batch of streams ---------------------------------------------------------------------------------
    def step(self, states: list[bytes | None], inputs: list[Any], reqs: list[ObserveRequest]) -> list[StepResult]:
        T = self.series.timestep
        results: list[StepResult | None] = [None] * len(inputs)
        ready: list[tuple[int, bytes, np.ndarray, np.ndarray, pd.DataFrame, Any, str]] = []
        for b, (blob, rows) in enumerate(zip(states, inputs)):
            try:
                state = self._advance(self._load(blob), rows)
                kept = len(state["rows"])
                if kept < T:
                    results[b] = (json.dumps(state).encode(), {"ready": False, "needed": T - kept})
                    continue
                name, history = self._history(state)
                x, f, future, scaler = self.task.window_inputs(history, history.iloc[0:0], name)  # type: ignore[attr-defined]
            except RequestError as exc:
                results[b] = exc
                continue
            except (ValueError, TypeError, KeyError, OverflowError) as exc:  # the forecaster's (or pandas') word
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else "rows that cannot be read"
                results[b] = RequestError(self.fields[1], message)
                continue
            ready.append((b, json.dumps(state).encode(), x, f, future, scaler, name))
        if ready:
            for (b, blob, *_), table in zip(ready, self._forecast(ready)):
                results[b] = (blob, {"ready": True, "forecast": table})
        return results  # type: ignore[return-value]

    def _load(self, blob: bytes | None) -> dict[str, Any]:
        state = json.loads(blob) if blob else {"rows": [], "series": None, "static": {}}
        if isinstance(state, list):  # the first format: the window's rows as objects
            state = {"rows": [[r[c] for c in self.stored] for r in state], "series": None, "static": {}}
        return state

    def _advance(self, state: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The stream's state with ``rows`` appended (the last :attr:`keep` rows kept), after checking that they
        continue it: later times, the same series, the same static values."""
        cfg, t = self.series, self.series.time_column
        kept = state["rows"]
        for i, row in enumerate(rows):
            where = f"rows[{i}]" if len(rows) > 1 else "row"
            if cfg.series_id:
                name = row[cfg.series_id]
                if state["series"] is None:
                    state["series"] = name
                elif name != state["series"]:
                    raise RequestError(
                        f"{where}.{cfg.series_id}",
                        f"a stream is one series: this one is {state['series']!r}, got {name!r} (use another stream)",
                    )
            for col in cfg.static:
                value, first = row.get(col), state["static"].get(col)
                if value is not None and first is not None and value != first:
                    raise RequestError(
                        f"{where}.{col}",
                        f"static covariate {col!r} of series {state['series']!r} is {first!r}, got {value!r}; a "
                        "static covariate has one value per series",
                    )
                if first is None and value is not None:
                    state["static"][col] = value
            if t and kept:
                try:
                    later = pd.Timestamp(pd.to_datetime(row[t])) > pd.Timestamp(pd.to_datetime(kept[-1][0]))
                except TypeError:  # one with a time zone, one without
                    raise RequestError(
                        f"{where}.{t}",
                        f"{row[t]!r} and the previous {t!r} {kept[-1][0]!r} do not compare: give every time with a "
                        "time zone or none",
                    ) from None
                if not later:
                    raise RequestError(
                        f"{where}.{t}", f"the {t!r} of each row must come after the previous row's ({kept[-1][0]!r})"
                    )
            kept.append([row[c] for c in self.stored])
        state["rows"] = kept[-self.keep :]
        return state

    def _history(self, state: dict[str, Any]) -> tuple[str, pd.DataFrame]:
        """The stream's rows as the table ``predict`` would read (series id and statics on every row), prepared
        as it prepares them."""
        cfg = self.series
        frame = pd.DataFrame(state["rows"], columns=self.stored)
        if cfg.series_id:
            frame[cfg.series_id] = state["series"]
        for col in cfg.static:
            frame[col] = state["static"].get(col)
        ((name, part),) = split_series(parse_times(frame, cfg), cfg)
        return name, part.reset_index(drop=True)

    def _forecast(self, ready: list) -> list[list[dict[str, Any]]]:
        """One model call for the ready streams; each forecast in data units, as the rows of ``predict``'s table
        (the same steps as the end of :meth:`Forecaster.predict`)."""
        task, cfg = self.task, self.series
        with torch.no_grad():
            x = torch.as_tensor(np.stack([r[2] for r in ready]), dtype=torch.float32)
            f = torch.as_tensor(np.stack([r[3] for r in ready]), dtype=torch.float32)
            pred = task.model(x.to(task.device), f.to(task.device)).cpu()
        scalers = [r[5] for r in ready]
        shift = np.asarray([[s.shift[s.columns.index(c)] for c in cfg.target] for s in scalers])
        scale = np.asarray([[s.scale[s.columns.index(c)] for c in cfg.target] for s in scalers])
        point = unscale(task.model.point(pred), shift, scale)
        q = unscale(pred, shift, scale) if task.cfg.quantiles else None
        tables = []
        for k, (*_, future, _, name) in enumerate(ready):
            out = pd.DataFrame()
            if cfg.series_id:
                out[cfg.series_id] = [name] * cfg.horizon
            if cfg.time_column:
                out[cfg.time_column] = future[cfg.time_column].to_numpy()
            for j, target in enumerate(cfg.target):
                out[target] = point[k, :, j]
            for j, target in enumerate(cfg.target):
                for m, level in enumerate(task.cfg.quantiles or ()):
                    out[f"{target}_q{level:g}"] = q[k, :, j, m]  # type: ignore[index]
            tables.append(forecast_records(out))
        return tables


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and abs(v) <= MAX_VALUE


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, (int, float)) and math.isfinite(value))
