"""From a table's rows to model inputs: numeric columns, time order, calendar features, scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import option
from .scaling import Scaler
from .series_config import SeriesConfig
from .tables import _CSV_SOURCE, _as_number, _row

_PERIODS = {"hour": 24, "dayofweek": 7, "day": 31, "month": 12, "dayofyear": 366}


def numeric_columns(cfg: SeriesConfig) -> list[str]:
    """The columns that are numbers and scaled per series: targets, then past and future covariates."""
    return list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))


def _check_columns(frame: pd.DataFrame, cfg: SeriesConfig) -> pd.DataFrame:
    """The frame with the target and covariate columns as numbers; unknown or non-numeric columns are errors."""
    named = {
        "target": cfg.target,
        "time_column": [cfg.time_column] if cfg.time_column else [],
        "series_id": [cfg.series_id] if cfg.series_id else [],
        "static": cfg.static,
        "past_covariates": cfg.past_covariates,
        "future_covariates": cfg.future_covariates,
    }
    unknown = {c: key for key, cols in named.items() for c in cols if c not in frame.columns}
    if unknown:
        options = ", ".join(dict.fromkeys(option(key) for key in unknown.values()))
        raise ValueError(f"unknown column(s) {list(unknown)}; the table has {list(frame.columns)} (check {options})")
    converted = {col: _as_number(frame, col) for col in numeric_columns(cfg)}
    changed = {col: values for col, values in converted.items() if values is not frame[col]}
    return frame.assign(**changed) if changed else frame


def _calendar(times: pd.Series, names: list[str]) -> pd.DataFrame:
    out = {}
    for name in names:
        attr = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(name, name)  # pandas' current names
        value = getattr(times.dt, attr).to_numpy(dtype=np.float64)
        angle = 2 * np.pi * value / _PERIODS[name]
        out[f"{name}_sin"], out[f"{name}_cos"] = np.sin(angle), np.cos(angle)
    return pd.DataFrame(out, index=times.index)


def parse_times(frame: pd.DataFrame, cfg: SeriesConfig) -> pd.DataFrame:
    """Check the columns (targets and covariates become numbers), parse and sort by the time column (duplicates
    are an error; with a series-id column they are checked per series, see :func:`rnnkit.data.panel.split_series`)."""
    frame = _check_columns(frame, cfg)
    if cfg.series_id is not None:  # before sorting moves the rows away from where the user can find them
        from .panel import check_ids

        check_ids(frame, cfg.series_id)
    if not cfg.time_column:
        return frame.reset_index(drop=True)
    try:
        parsed = pd.to_datetime(frame[cfg.time_column])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"time column {cfg.time_column!r} could not be parsed as dates ({exc})") from None
    if parsed.isna().any():  # sorted last, such a row would pass for the newest observation
        empty = parsed.isna().to_numpy()
        row = int(np.flatnonzero(empty)[0])
        where = _row(frame, row)
        raise ValueError(
            f"time column {cfg.time_column!r} ({option('time_column')}) is empty in {int(empty.sum())} row(s) "
            f"(first: {where}); give every row its time or drop those rows"
        )
    if cfg.series_id is None and parsed.duplicated().any():
        dup = parsed[parsed.duplicated()].iloc[0]
        raise ValueError(f"time column {cfg.time_column!r} has duplicate timestamps (first: {dup})")
    if not parsed.is_monotonic_increasing:
        frame = frame.copy()
        frame.attrs.pop(_CSV_SOURCE, None)  # sorting moves rows away from their file lines
    order = [cfg.time_column] if cfg.series_id is None else [cfg.series_id, cfg.time_column]
    frame = frame.assign(**{cfg.time_column: parsed})
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def encode(
    frame: pd.DataFrame,
    cfg: SeriesConfig,
    scaler: Scaler,
    static: np.ndarray | None = None,
    static_names: list[str] | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Scaled model inputs ``(N, F)`` (targets first), their column names, and the known-future column names.

    ``static`` ``(K,)`` (named ``static_names``) are a series' encoded static covariates: constant known-future
    columns, so every window of the series carries them.
    """
    numeric = numeric_columns(cfg)
    extra: list[pd.DataFrame] = []
    if cfg.calendar and cfg.time_column:
        extra.append(_calendar(frame[cfg.time_column], cfg.calendar))
    if static is not None and static_names:
        # the encoded values replace the raw static columns (a numeric one keeps its name: no clash with itself)
        frame = frame.drop(columns=[c for c in cfg.static if c in frame.columns])
        extra.append(pd.DataFrame(np.tile(static, (len(frame), 1)), columns=static_names, index=frame.index))
    added: list[str] = []
    for part in extra:
        clash = [c for c in part.columns if c in frame.columns]
        if clash:
            raise ValueError(f"derived column(s) {clash} clash with columns of the table; rename those")
        added += list(part.columns)
    if extra:
        frame = pd.concat([frame, *extra], axis=1)
    future_cols = [*cfg.future_covariates, *added]
    input_cols = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *future_cols]))
    table = frame[input_cols].to_numpy(dtype=np.float64).copy()
    for j, col in enumerate(input_cols):
        if col in numeric:
            table[:, j] = scaler.transform(table[:, j : j + 1], [col])[:, 0]
    return table, input_cols, future_cols


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
