"""Time series: from a table to scaled, chronologically split sliding windows.

A window reads ``timestep`` past steps (targets, past-observed covariates, known-future covariates) and predicts
the next ``horizon`` steps of the targets; known-future covariates are also given for those horizon steps.
Scalers are fitted on the training rows only, per column, and missing values in each part are filled from rows up
to that part's end only, so nothing about validation or test leaks into training (nor test into validation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import option
from .missing import _check_finite, _check_has_values, handle_missing
from .scaling import Scaler, load_scaler, save_scaler
from .splits import _borders
from .tables import _CSV_SOURCE, _as_number, read_table
from .windows import SeriesData, WindowDataset

__all__ = [
    "CALENDAR",
    "Scaler",
    "SeriesConfig",
    "SeriesData",
    "WindowDataset",
    "encode",
    "handle_missing",
    "load_scaler",
    "parse_times",
    "prepare_series",
    "read_table",
    "save_scaler",
]
CALENDAR = ("hour", "dayofweek", "day", "month", "dayofyear")
_PERIODS = {"hour": 24, "dayofweek": 7, "day": 31, "month": 12, "dayofyear": 366}


@dataclass
class SeriesConfig:
    """How a table becomes forecasting windows.

    Attributes:
        target: the column(s) to forecast.
        time_column: a date/time column to parse and sort by (checked for duplicates); ``None`` keeps row order.
        past_covariates: columns observed up to the forecast time only (e.g. other sensors).
        future_covariates: columns known ahead (e.g. a holiday flag); given for the horizon steps too.
        calendar: calendar features derived from ``time_column`` and used as future covariates, each encoded as
            sin/cos: any of ``hour``, ``dayofweek``, ``day``, ``month``, ``dayofyear``.
        timestep: lookback, the number of past steps a window reads.
        horizon: steps predicted.
        stride: steps between window starts.
        train, val, test: the chronological split, as fractions (< 1) or row counts (>= 1); ``test`` None means
            "the rest".
        scaler: ``standard``, ``minmax`` or ``none``; fitted on the training rows, per column.
        missing: ``error`` (default: name the column and the rows), ``interpolate`` (linear) or ``ffill``; each
            part is filled from its own and earlier rows only (see :func:`handle_missing`).
    """

    target: list[str] = field(default_factory=list)
    time_column: str | None = None
    past_covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    timestep: int = 48
    horizon: int = 1
    stride: int = 1
    train: float = 0.7
    val: float = 0.1
    test: float | None = None
    scaler: str = "standard"
    missing: str = "error"

    def __post_init__(self) -> None:
        if isinstance(self.target, str):
            self.target = [self.target]
        if not self.target:
            raise ValueError(f"SeriesConfig: name at least one target column with {option('target')}")
        if self.timestep < 1 or self.horizon < 1 or self.stride < 1:
            raise ValueError(
                f"SeriesConfig: {option('timestep')}, {option('horizon')} and {option('stride')} must be >= 1, "
                f"got {self.timestep}, {self.horizon}, {self.stride}"
            )
        if self.scaler not in ("standard", "minmax", "none"):
            raise ValueError(
                f"SeriesConfig: {option('scaler')} must be 'standard', 'minmax' or 'none', got {self.scaler!r}"
            )
        if self.missing not in ("error", "interpolate", "ffill"):
            raise ValueError(
                f"SeriesConfig: {option('missing')} must be 'error', 'interpolate' or 'ffill', got {self.missing!r}"
            )
        bad = [c for c in self.calendar if c not in CALENDAR]
        if bad:
            raise ValueError(f"SeriesConfig: unknown calendar feature(s) {bad}; expected some of {list(CALENDAR)}")
        if self.calendar and self.time_column is None:
            raise ValueError(f"SeriesConfig: calendar features need a time column; set {option('time_column')}")


def _check_columns(frame: pd.DataFrame, cfg: SeriesConfig) -> pd.DataFrame:
    """The frame with the target and covariate columns as numbers; unknown or non-numeric columns are errors."""
    wanted = [*cfg.target, *cfg.past_covariates, *cfg.future_covariates] + (
        [cfg.time_column] if cfg.time_column else []
    )
    unknown = [c for c in wanted if c not in frame.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; the table has {list(frame.columns)}")
    numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
    converted = {col: _as_number(frame, col) for col in numeric}
    changed = {col: values for col, values in converted.items() if values is not frame[col]}
    return frame.assign(**changed) if changed else frame


def _calendar(times: pd.Series, names: list[str]) -> pd.DataFrame:
    out = {}
    for name in names:
        value = getattr(times.dt, name).to_numpy(dtype=np.float64)
        angle = 2 * np.pi * value / _PERIODS[name]
        out[f"{name}_sin"], out[f"{name}_cos"] = np.sin(angle), np.cos(angle)
    return pd.DataFrame(out, index=times.index)


def parse_times(frame: pd.DataFrame, cfg: SeriesConfig) -> pd.DataFrame:
    """Check the columns (targets and covariates become numbers), parse and sort by the time column (duplicates
    are an error)."""
    frame = _check_columns(frame, cfg)
    if not cfg.time_column:
        return frame.reset_index(drop=True)
    try:
        parsed = pd.to_datetime(frame[cfg.time_column])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"time column {cfg.time_column!r} could not be parsed as dates ({exc})") from None
    if parsed.duplicated().any():
        dup = parsed[parsed.duplicated()].iloc[0]
        raise ValueError(f"time column {cfg.time_column!r} has duplicate timestamps (first: {dup})")
    if not parsed.is_monotonic_increasing:
        frame = frame.copy()
        frame.attrs.pop(_CSV_SOURCE, None)  # sorting moves rows away from their file lines
    return frame.assign(**{cfg.time_column: parsed}).sort_values(cfg.time_column).reset_index(drop=True)


def encode(frame: pd.DataFrame, cfg: SeriesConfig, scaler: Scaler) -> tuple[np.ndarray, list[str], list[str]]:
    """Scaled model inputs ``(N, F)`` (targets first), their column names, and the known-future column names."""
    numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
    calendar_cols: list[str] = []
    if cfg.calendar and cfg.time_column:
        calendar = _calendar(frame[cfg.time_column], cfg.calendar)
        clash = [c for c in calendar.columns if c in frame.columns]
        if clash:
            raise ValueError(f"calendar feature column(s) {clash} clash with columns of the table; rename those")
        frame = pd.concat([frame, calendar], axis=1)
        calendar_cols = list(calendar.columns)
    future_cols = [*cfg.future_covariates, *calendar_cols]
    input_cols = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *future_cols]))
    table = frame[input_cols].to_numpy(dtype=np.float64).copy()
    for j, col in enumerate(input_cols):
        if col in numeric:
            table[:, j] = scaler.transform(table[:, j : j + 1], [col])[:, 0]
    return table, input_cols, future_cols


def prepare_series(
    source: str | Path | pd.DataFrame, cfg: SeriesConfig, *, scaler: Scaler | None = None, encoding: str = "utf-8"
) -> SeriesData:
    """Read, check, order, split, fill and scale a series. Pass a fitted ``scaler`` to reuse it (evaluation).

    Missing values are filled per part (train, then val, then test) from rows up to that part's end only, and the
    scaler is fitted on the filled training rows, so neither sees later rows (see :func:`handle_missing`).
    A column with no values (in the training rows) or with non-finite values is an error naming it.
    """
    frame = parse_times(read_table(source, encoding=encoding), cfg)
    numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
    if len(frame) < cfg.timestep + cfg.horizon:
        raise ValueError(
            f"the series has {len(frame)} rows, fewer than timestep + horizon = {cfg.timestep + cfg.horizon}: "
            f"no window fits; use a smaller {option('timestep')} or {option('horizon')}"
        )
    borders = _borders(len(frame), cfg)
    # before the policy: an empty column is not a "missing values" problem, and ffill/interpolate cannot fix it
    _check_has_values(frame, numeric, borders[0])
    frame = handle_missing(frame, numeric, cfg.missing, borders=borders)
    _check_finite(frame, numeric)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by _check_scaled, by column
        if scaler is None:
            scaler = Scaler.fit(cfg.scaler, frame.loc[: borders[0] - 1, numeric])
        table, input_cols, future_cols = encode(frame, cfg, scaler)
    _check_scaled(frame, table, input_cols, numeric, scaler)
    future = table[:, [input_cols.index(c) for c in future_cols]]
    targets = table[:, [input_cols.index(c) for c in cfg.target]]
    times = frame[cfg.time_column] if cfg.time_column else None
    return SeriesData(cfg, table, future, targets, times, borders, scaler, input_cols, future_cols)


def _check_scaled(
    frame: pd.DataFrame, table: np.ndarray, input_cols: list[str], numeric: list[str], scaler: Scaler
) -> None:
    """Finite raw values can still scale to inf/NaN (a mean that overflows float64, a reused scaler that is not
    finite): name the column here rather than let training report a NaN loss."""
    bad = ~np.isfinite(table)
    if not bad.any():
        return
    j = int(np.flatnonzero(bad.any(0))[0])
    i = int(np.flatnonzero(bad[:, j])[0])
    col = input_cols[j]
    fit = ""
    if col in numeric and col in scaler.columns:
        k = scaler.columns.index(col)
        fit = f"; the {scaler.kind} scaler has shift {scaler.shift[k]:g}, scale {scaler.scale[k]:g}"
    raw = frame[col].iloc[i] if col in frame.columns else "?"
    raise ValueError(
        f"column {col!r} is not finite after scaling (row {i}: {raw} became {table[i, j]}){fit}; its values are "
        "too large for float64 arithmetic: rescale the column (e.g. divide by a power of ten)"
    )
