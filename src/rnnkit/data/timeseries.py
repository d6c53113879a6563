"""Time series: from a table to scaled, chronologically split sliding windows.

A window reads ``timestep`` past steps (targets, past-observed covariates, known-future covariates) and predicts
the next ``horizon`` steps of the targets; known-future covariates are also given for those horizon steps.
Scalers are fitted on each series' training rows only, per column, and missing values in each part are filled from
rows up to that part's end only, so nothing about validation or test leaks into training (nor test into
validation). A long-format table (``series_id``) holds many series; each is split and scaled on its own, and a
series too short for one window per part is skipped and named.

The pieces live in their own modules and are importable from here: :mod:`.series_config` (SeriesConfig),
:mod:`.tables` (reading), :mod:`.encoding` (columns, time order, calendar, scaling), :mod:`.missing`,
:mod:`.scaling`, :mod:`.splits` (split and default lookback), :mod:`.frequency` (season), :mod:`.panel` (many
series, static covariates) and :mod:`.windows`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import option
from .encoding import _check_scaled, encode, numeric_columns, parse_times
from .frequency import infer_offset, infer_season, irregular_step
from .missing import _check_finite, _check_has_values, handle_missing
from .panel import StaticEncoder, split_series, static_rows
from .scaling import Scaler, load_scaler, save_scaler
from .series_config import CALENDAR, SeriesConfig
from .splits import _borders, auto_timestep, plan_split
from .tables import read_table
from .windows import SeriesData, WindowDataset

__all__ = [
    "CALENDAR",
    "Scaler",
    "SeriesConfig",
    "SeriesData",
    "StaticEncoder",
    "WindowDataset",
    "encode",
    "handle_missing",
    "infer_offset",
    "infer_season",
    "load_scaler",
    "parse_times",
    "prepare_series",
    "read_table",
    "save_scaler",
]


def prepare_series(
    source: str | Path | pd.DataFrame,
    cfg: SeriesConfig,
    *,
    scaler: Scaler | dict[str, Scaler] | None = None,
    encoding: str = "utf-8",
    season: int | None = None,
    static: StaticEncoder | None = None,
) -> SeriesData:
    """Read, check, order, split, fill and scale a table of one series or (with ``cfg.series_id``) many.

    Pass fitted scalers (one, or one per series id) and a fitted static encoder to reuse them (evaluation); a
    series without a scaler gets one fitted on its own training rows. ``season`` (None: inferred from the time
    column) sets the default lookback when ``cfg.timestep`` is None; the result's ``cfg`` holds the lookback used.

    Missing values are filled per part (train, then val, then test) from rows up to that part's end only, and the
    scaler is fitted on the filled training rows, so neither sees later rows (see :func:`handle_missing`).
    A column with no values (in the training rows) or with non-finite values is an error naming it.
    """
    frame = parse_times(read_table(source, encoding=encoding), cfg)
    groups = [(name, part.reset_index(drop=True)) for name, part in split_series(frame, cfg)]
    if cfg.time_column and cfg.series_id is None:
        why = irregular_step(frame[cfg.time_column])
        if why is not None:
            raise ValueError(f"time column {cfg.time_column!r} has an irregular frequency: {why}")
    if season is None:
        longest = max(groups, key=lambda g: len(g[1]))[1]
        season = infer_season(longest[cfg.time_column]) if cfg.time_column else 1
    cfg = _resolve_timestep(cfg, [len(part) for _, part in groups], season)
    kept, skipped = [], {}
    for name, part in groups:
        borders, why = plan_split(len(part), cfg, name)
        if borders is not None:
            kept.append((name, part, borders))
        elif cfg.series_id is None:
            raise ValueError(why)
        else:
            skipped[name] = why
    if not kept:
        raise ValueError(f"no series holds one window per part; {next(iter(skipped.values()))}")
    if cfg.static and static is None:
        static = StaticEncoder.fit(static_rows([(n, p) for n, p, _ in kept], cfg.static), cfg.static)
    statics = static_rows([(n, p) for n, p, _ in kept], cfg.static) if cfg.static else None
    pieces = [_one(name, part, b, cfg, scaler, static, statics, i) for i, (name, part, b) in enumerate(kept)]
    values = np.concatenate([p[0] for p in pieces])
    input_cols, future_cols = pieces[0][2], pieces[0][3]
    offsets = np.cumsum([0] + [len(p[0]) for p in pieces[:-1]])
    parts = np.asarray([[o, o + b[0], o + b[1], o + b[2]] for o, (_, _, b) in zip(offsets, kept)], dtype=np.int64)
    times = pd.concat([p[4] for p in pieces], ignore_index=True) if cfg.time_column else None
    return SeriesData(
        cfg,
        values,
        values[:, [input_cols.index(c) for c in future_cols]],
        values[:, [input_cols.index(c) for c in cfg.target]],
        times,
        parts,
        [p[1] for p in pieces],
        input_cols,
        future_cols,
        ids=[name for name, _, _ in kept],
        season=season,
        skipped=skipped,
        static=static,
    )


def _resolve_timestep(cfg: SeriesConfig, lengths: list[int], season: int) -> SeriesConfig:
    """``cfg`` with a concrete lookback: the given one, or the default for the series (for many series, the
    default of a short one, the 25th percentile, so that most series fit)."""
    if cfg.timestep is not None:
        return cfg
    choices = []
    for n in lengths:
        try:
            train = _borders(n, cfg)[0]
        except ValueError:
            if len(lengths) == 1:
                raise
            continue  # a series too short for the split: skipped and named later (plan_split), no say here
        if n > cfg.horizon:
            choices.append(auto_timestep(train, cfg.horizon, season))
    choices.sort()
    if not choices:
        raise ValueError(
            f"the series are too short: {max(lengths)} rows at most, for a horizon of {cfg.horizon} steps; use a "
            f"smaller {option('horizon')}"
        )
    return replace(cfg, timestep=max(1, choices[(len(choices) - 1) // 4]))


def _one(
    name: str,
    frame: pd.DataFrame,
    borders: tuple[int, int, int],
    cfg: SeriesConfig,
    scaler: Scaler | dict[str, Scaler] | None,
    static: StaticEncoder | None,
    statics: pd.DataFrame | None,
    i: int,
) -> tuple[np.ndarray, Scaler, list[str], list[str], pd.Series | None]:
    """One series: fill, scale and encode; ``(table, scaler, input columns, future columns, times)``."""
    numeric = numeric_columns(cfg)
    where = f"series {name!r}: " if name else ""
    try:
        # before the policy: an empty column is not a "missing values" problem, and ffill/interpolate cannot fix it
        _check_has_values(frame, numeric, borders[0])
        frame = handle_missing(frame, numeric, cfg.missing, borders=borders)
        _check_finite(frame, numeric)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None
    fitted = scaler.get(name) if isinstance(scaler, dict) else scaler
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by _check_scaled, by column
        if fitted is None:
            fitted = Scaler.fit(cfg.scaler, frame.loc[: borders[0] - 1, numeric])
        row = static.transform(statics.iloc[i]) if static is not None and statics is not None else None
        table, input_cols, future_cols = encode(frame, cfg, fitted, row, static.names if static else None)
    _check_scaled(frame, table, input_cols, numeric, fitted)
    return table, fitted, input_cols, future_cols, frame[cfg.time_column] if cfg.time_column else None
