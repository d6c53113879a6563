"""Forecaster streams: a stream is a series observed a row at a time.

The forecaster is a window model (it reads the last ``timestep`` rows afresh for every forecast), so a stream's
state is that window of raw rows, not an RNN state. Each observe appends its row(s) and, once the window is full,
answers the forecast of the next ``horizon`` steps from the window, exactly as :meth:`Forecaster.predict` does on
the whole history (the same preparation: time parsing, missing values, scaling, calendar features, future
timestamps); the model runs once for all the streams of a batch.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.timeseries import encode, handle_missing, parse_times
from ..tasks.base import Task
from .config import Limits
from .schemas import ObserveRequest
from .streaming import RequestError, StepResult, Streamer, one_of

#: the largest magnitude accepted for a value (beyond it the scaled inputs and the answers lose all meaning)
MAX_VALUE = 1e15


class ForecastStreamer(Streamer):
    """Windows of rows; the answer is :meth:`Forecaster.predict` of the window, batched across streams."""

    streams = True
    fields = ("row", "rows")
    describe = (
        "a stream is a series observed row by row: the server keeps the last `timestep` rows and, once it has "
        "them, answers the forecast of the next `horizon` steps with its interval"
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
        self.columns = [*([cfg.time_column] if cfg.time_column else []), *self.numeric]
        # the forecast's future timestamps are inferred from the recent times (predict looks at up to 200)
        self.keep = max(cfg.timestep, 3) if cfg.time_column else cfg.timestep

    def parse(self, req: ObserveRequest) -> tuple[list[dict[str, Any]], int]:
        kind, value = one_of(req, self.fields)
        rows = [value] if kind == "row" else value
        clean = []
        for i, row in enumerate(rows):
            where = "row" if kind == "row" else f"rows[{i}]"
            extra = sorted(set(row) - set(self.columns))
            if extra:
                raise RequestError(f"{where}.{extra[0]}", f"unknown column {extra[0]!r}; expected {self.columns}")
            out: dict[str, Any] = {}
            for col in self.columns:
                if col not in row or row[col] is None:
                    raise RequestError(f"{where}.{col}", f"missing value for column {col!r}; expected {self.columns}")
                v = row[col]
                if col == self.series.time_column:
                    if (
                        isinstance(v, bool)
                        or not isinstance(v, (str, int, float))
                        or pd.isna(pd.to_datetime(v, errors="coerce"))
                    ):
                        raise RequestError(f"{where}.{col}", f"{col!r} must be a date/time, got {v!r}")
                elif (
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_VALUE
                ):
                    raise RequestError(f"{where}.{col}", f"{col!r} must be a finite number (|x| <= 1e15), got {v!r}")
                out[col] = v
            clean.append(out)
        return clean, len(clean)

    def step(self, states: list[bytes | None], inputs: list[Any], reqs: list[ObserveRequest]) -> list[StepResult]:
        cfg = self.series
        results: list[StepResult | None] = [None] * len(inputs)
        ready: list[tuple[int, list[dict[str, Any]], pd.DataFrame, np.ndarray, np.ndarray]] = []
        for b, (blob, rows) in enumerate(zip(states, inputs)):
            window = (json.loads(blob) if blob else []) + rows
            window = window[-self.keep :]
            try:
                frame = self._frame(window)
                if len(frame) < cfg.timestep:
                    answer = {"ready": False, "needed": cfg.timestep - len(frame)}
                    results[b] = (json.dumps(window).encode(), answer)
                    continue
                x, f, future = self._inputs(frame)
            except ValueError as exc:
                results[b] = RequestError(self.fields[1], str(exc).splitlines()[0])
                continue
            ready.append((b, window, future, x, f))
        if ready:
            task = self.task
            with torch.no_grad():
                x = torch.as_tensor(np.stack([r[3] for r in ready]), dtype=torch.float32)
                f = torch.as_tensor(np.stack([r[4] for r in ready]), dtype=torch.float32)
                pred = task.model(x.to(task.device), f.to(task.device)).cpu()
            point = task._unscale(task.model.point(pred))  # type: ignore[attr-defined]
            q = task._unscale(pred) if task.cfg.quantiles else None  # type: ignore[attr-defined]
            for k, (b, window, future, _, _) in enumerate(ready):
                answer = {"ready": True, "forecast": self._table(future, point[k], None if q is None else q[k])}
                results[b] = (json.dumps(window).encode(), answer)
        return results  # type: ignore[return-value]

    # ---- what Forecaster.predict does before and after its model call (no future rows in a stream) ------------
    def _frame(self, window: list[dict[str, Any]]) -> pd.DataFrame:
        t = self.series.time_column
        if t and not pd.to_datetime(pd.Series([r[t] for r in window])).is_monotonic_increasing:
            raise ValueError(f"the {t!r} of each row must come after the previous row's")
        return parse_times(pd.DataFrame(window, columns=self.columns), self.series)

    def _inputs(self, history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        cfg = self.series
        future = self.task._extend_future(history, history.iloc[0:0])  # type: ignore[attr-defined]
        past = handle_missing(history.iloc[-cfg.timestep :].reset_index(drop=True), self.numeric, cfg.missing)
        window = pd.concat([past, future], ignore_index=True)
        table, input_cols, future_cols = encode(window, cfg, self.task.scaler)  # type: ignore[attr-defined]
        f_idx = [input_cols.index(c) for c in future_cols]
        return table[: cfg.timestep], table[cfg.timestep :, f_idx], future

    def _table(self, future: pd.DataFrame, point: np.ndarray, q: np.ndarray | None) -> list[dict[str, Any]]:
        cfg, levels = self.series, self.task.cfg.quantiles or ()
        rows = []
        for h in range(cfg.horizon):
            row: dict[str, Any] = {}
            if cfg.time_column:
                row[cfg.time_column] = pd.Timestamp(future[cfg.time_column].iloc[h]).isoformat()
            for j, name in enumerate(cfg.target):
                row[name] = _finite(point[h, j])
            for j, name in enumerate(cfg.target):
                for k, level in enumerate(levels):
                    row[f"{name}_q{level:g}"] = _finite(q[h, j, k])  # type: ignore[index]
            rows.append(row)
        return rows


def _finite(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
