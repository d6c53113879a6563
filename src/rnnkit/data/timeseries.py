"""Time series: from a table to scaled, chronologically split sliding windows.

A window reads ``timestep`` past steps (targets, past-observed covariates, known-future covariates) and predicts
the next ``horizon`` steps of the targets; known-future covariates are also given for those horizon steps.
Scalers are fitted on the training rows only, per column, and missing values in each part are filled from rows up
to that part's end only, so nothing about validation or test leaks into training (nor test into validation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import option

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


@dataclass
class Scaler:
    """Per-column affine scaling ``(x - shift) / scale``, fitted on training rows; JSON round-trips."""

    kind: str
    columns: list[str]
    shift: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, kind: str, frame: pd.DataFrame) -> Scaler:
        values = frame.to_numpy(dtype=np.float64)
        if kind == "standard":
            shift, scale = values.mean(0), values.std(0)
        elif kind == "minmax":
            shift, scale = values.min(0), values.max(0) - values.min(0)
        else:
            shift, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        scale = np.where(scale > 0, scale, 1.0)  # a constant column stays as it is
        return cls(kind, list(frame.columns), shift.tolist(), scale.tolist())

    def transform(self, values: np.ndarray, columns: list[str] | None = None) -> np.ndarray:
        idx = self._index(columns)
        return (values - np.asarray(self.shift)[idx]) / np.asarray(self.scale)[idx]

    def inverse(self, values: np.ndarray | Tensor, columns: list[str] | None = None) -> np.ndarray | Tensor:
        idx = self._index(columns)
        shift, scale = np.asarray(self.shift)[idx], np.asarray(self.scale)[idx]
        if isinstance(values, Tensor):
            return values * torch.as_tensor(scale, dtype=values.dtype) + torch.as_tensor(shift, dtype=values.dtype)
        return values * scale + shift

    def _index(self, columns: list[str] | None) -> list[int]:
        if columns is None:
            return list(range(len(self.columns)))
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise ValueError(f"Scaler: columns {missing} were not fitted (fitted: {self.columns})")
        return [self.columns.index(c) for c in columns]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "shift": self.shift, "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scaler:
        return cls(data["kind"], list(data["columns"]), list(data["shift"]), list(data["scale"]))


# read_table marks a frame read from a CSV with its path: row i is then line i + 2 of the file (after the header)
_CSV_SOURCE = "rnnkit_csv_source"


def read_table(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8") -> pd.DataFrame:
    """A DataFrame from a DataFrame, a CSV file or a Parquet file, with errors that say what went wrong."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        frame.attrs.pop(_CSV_SOURCE, None)  # a caller's edited frame no longer matches the file's lines
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise ValueError(f"{path}: the file is empty; expected a CSV with a header row")
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            try:
                frame = pd.read_csv(path, encoding=encoding)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}: not valid {encoding} ({exc.reason} at byte {exc.start}); "
                    f"pass the file's encoding, e.g. {option('encoding', 'latin-1')}"
                ) from None
            except pd.errors.ParserError as exc:
                raise ValueError(f"{path}: malformed CSV ({exc})") from None
            except pd.errors.EmptyDataError:
                raise ValueError(f"{path}: no columns to read; expected a CSV with a header row") from None
            frame.attrs[_CSV_SOURCE] = str(path)
    if frame.empty:
        raise ValueError(f"{source if not isinstance(source, pd.DataFrame) else 'DataFrame'}: no rows")
    return frame


def _show(value: Any, width: int = 40) -> str:
    """A cell value for a one-line message: quoted, escaped (no raw newlines), shortened."""
    text = str(value)
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _where(frame: pd.DataFrame, i: int, shown: str) -> str:
    """``row i has <shown>`` plus where row ``i`` (0-based position) is: its line if the frame is a CSV file as read
    (header on line 1), else say the row counts from 0."""
    source = frame.attrs.get(_CSV_SOURCE)
    if source:
        return f"row {i} has {shown} (line {i + 2} of {source})"
    return f"row {i} (counting from 0) has {shown}"


def _as_number(frame: pd.DataFrame, col: str) -> pd.Series:
    """Column ``col`` as numbers, or a ValueError naming the first value that is not one, and where it is."""
    values = frame[col]
    if pd.api.types.is_numeric_dtype(values):
        return values
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = (parsed.isna() & values.notna()).to_numpy()
        if not bad.any():
            return parsed  # numbers held as strings ("12.5")
        i = int(np.flatnonzero(bad)[0])
        if bad.sum() < values.notna().sum():  # mostly numbers: the bad value is a typo, a unit, a marker
            raise ValueError(
                f"column {col!r} is not numeric: {_where(frame, i, _show(values.iloc[i]))}; fix or remove it, "
                "or mark missing values as empty"
            )
    else:  # dates, categories, ...: the whole column is of the wrong kind
        i = int(np.flatnonzero(values.notna().to_numpy())[0]) if values.notna().any() else 0
    raise ValueError(
        f"column {col!r} is not numeric: {_where(frame, i, _show(values.iloc[i]))}; choose numeric columns as "
        f"{option('target')} and covariates"
    )


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


def _fill(part: pd.DataFrame, policy: str) -> pd.DataFrame:
    """Fill one part's rows from those rows alone: linear interpolation between observed values (``interpolate``),
    else carry the last value forward; trailing gaps are carried forward, a leading gap takes the part's first
    observed value. Only ``part``'s own rows are read, so nothing after its end leaks in."""
    if policy == "interpolate":
        part = part.interpolate(method="linear", limit_area="inside")
    return part.ffill().bfill()


def handle_missing(
    frame: pd.DataFrame, columns: list[str], policy: str, *, borders: Sequence[int] = ()
) -> pd.DataFrame:
    """Apply the missing-value policy (``error``, ``interpolate``, ``ffill``) to ``columns``.

    Without ``borders`` the frame is one part. With ``borders`` (row positions where parts end, e.g. the
    train/val/test ends) the rows of each part are filled from the rows ``[0, end)`` of that part only:
    ``interpolate`` is linear between observed values, ``ffill`` carries the last observed value forward, and
    gaps at the end of a part are carried forward, never filled from later rows. A leading gap at the very start
    of the series is back-filled from the first observed value in the same part. Rows after the last border are
    filled from all rows. A column with no observed value in a part's rows is an error.
    """
    missing = frame[columns].isna()
    if not missing.to_numpy().any():
        return frame
    if policy == "error":
        col = missing.any().idxmax()
        rows = np.flatnonzero(missing[col].to_numpy())
        where = f"rows {rows[:5].tolist()}" + (" ..." if len(rows) > 5 else "")
        raise ValueError(
            f"column {col!r} has {len(rows)} missing value(s) ({where}); fill them, or pass "
            f"{option('missing', 'interpolate')} or {option('missing', 'ffill')}"
        )
    gappy = [c for c in columns if missing[c].any()]
    ends = sorted({int(e) for e in borders if 0 < e < len(frame)} | {len(frame)})
    filled = frame[gappy].astype(np.float64)  # the fill runs on a copy; parts are written back below
    start = 0
    for end in ends:
        part = _fill(frame[gappy].iloc[:end].astype(np.float64), policy)
        filled.iloc[start:end] = part.iloc[start:end].to_numpy()
        start = end
    still = filled.isna().to_numpy()
    if still.any():  # a part (or all rows up to its end) without one observed value: nothing to fill from
        col = gappy[int(np.flatnonzero(still.any(0))[0])]
        row = int(np.flatnonzero(still[:, gappy.index(col)])[0])
        end = next(e for e in ends if e > row)
        raise ValueError(f"column {col!r} has no values in rows 0..{end - 1}; drop it or fill it")
    frame = frame.copy()
    frame[gappy] = filled
    return frame


def _check_has_values(frame: pd.DataFrame, columns: list[str], train_end: int) -> None:
    """An empty column (or one empty in the training rows) cannot be filled or scaled: say so before training
    turns it into a NaN loss."""
    for col in columns:
        observed = frame[col].notna().to_numpy()
        if not observed.any():
            raise ValueError(f"column {col!r} has no values; drop it or fill it")
        if not observed[:train_end].any():
            raise ValueError(
                f"column {col!r} has no values in the training rows (0..{train_end - 1}); drop it or fill it"
            )


def _check_finite(frame: pd.DataFrame, columns: list[str]) -> None:
    """No infinite values (a CSV "inf", a division gone wrong) after filling."""
    values = frame[columns].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.flatnonzero(bad.any(0))[0])
        i = int(np.flatnonzero(bad[:, j])[0])
        raise ValueError(
            f"column {columns[j]!r} has a non-finite value: {_where(frame, i, str(values[i, j]))}; fix or remove it"
        )


def _calendar(times: pd.Series, names: list[str]) -> pd.DataFrame:
    out = {}
    for name in names:
        value = getattr(times.dt, name).to_numpy(dtype=np.float64)
        angle = 2 * np.pi * value / _PERIODS[name]
        out[f"{name}_sin"], out[f"{name}_cos"] = np.sin(angle), np.cos(angle)
    return pd.DataFrame(out, index=times.index)


def _borders(n: int, cfg: SeriesConfig) -> tuple[int, int, int]:
    def rows(v: float | None, default: int) -> int:
        if v is None:
            return default
        return round(v * n) if v < 1 else int(v)

    train = rows(cfg.train, 0)
    val = rows(cfg.val, 0)
    test = rows(cfg.test, n - train - val)
    if train < 1 or val < 0 or test < 0 or train + val + test > n:
        given = [option("train", cfg.train), option("val", cfg.val)]
        given += [option("test", cfg.test)] if cfg.test is not None else []
        raise ValueError(
            f"the split {', '.join(given)} does not fit {n} rows: the training part needs at least one row and the "
            f"parts at most {n} together; change {option('train')}, {option('val')} or {option('test')}"
        )
    return train, train + val, train + val + test


@dataclass
class SeriesData:
    """A prepared series: scaled features, split borders and the fitted scaler.

    Attributes:
        values: ``(N, F)`` scaled inputs in column order ``input_columns`` (targets first).
        future: ``(N, F_future)`` scaled known-future covariates (may have 0 columns).
        targets: ``(N, n_targets)`` scaled targets.
        times: the parsed time column, if any.
        borders: row index where train, val and test end.
    """

    cfg: SeriesConfig
    values: np.ndarray
    future: np.ndarray
    targets: np.ndarray
    times: pd.Series | None
    borders: tuple[int, int, int]
    scaler: Scaler
    input_columns: list[str]
    future_columns: list[str]

    def windows(self, part: str) -> WindowDataset:
        """Windows whose targets lie in ``train``, ``val``, ``test`` (inputs may reach back before the border)
        or anywhere (``all``)."""
        if part not in ("train", "val", "test", "all"):
            raise ValueError(f"part must be 'train', 'val', 'test' or 'all', got {part!r}")
        start = {"train": 0, "val": self.borders[0], "test": self.borders[1], "all": 0}[part]
        stop = {"train": self.borders[0], "val": self.borders[1], "test": self.borders[2], "all": len(self.values)}[
            part
        ]
        L, H = self.cfg.timestep, self.cfg.horizon
        first_target = max(start, L)  # a window needs `timestep` rows before its first target
        starts = np.arange(first_target - L, stop - H - L + 1, self.cfg.stride)
        if len(starts) == 0:
            larger = f", or a larger {option(part)} part" if part != "all" else ""
            raise ValueError(
                f"the {part} part (rows {start}..{stop}) is too short for one window of timestep {L} + horizon {H}; "
                f"use a smaller {option('timestep')} or {option('horizon')}{larger}"
            )
        return WindowDataset(self, starts)


class WindowDataset(Dataset):
    """Sliding windows: item ``i`` is ``(x (timestep, F), x_future (horizon, F_future), y (horizon, n_targets))``."""

    def __init__(self, data: SeriesData, starts: np.ndarray) -> None:
        self.data, self.starts = data, starts
        cfg = data.cfg
        self.x = torch.as_tensor(data.values, dtype=torch.float32)
        self.f = torch.as_tensor(data.future, dtype=torch.float32)
        self.y = torch.as_tensor(data.targets, dtype=torch.float32)
        self.L, self.H = cfg.timestep, cfg.horizon

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        s = int(self.starts[i])
        t = s + self.L
        return self.x[s:t], self.f[t : t + self.H], self.y[t : t + self.H]

    def tensors(self) -> tuple[Tensor, Tensor, Tensor]:
        """All windows stacked: ``x (N, timestep, F)``, ``x_future (N, horizon, F_f)``, ``y (N, horizon, n)``."""
        idx = torch.as_tensor(self.starts)[:, None]
        x = self.x[idx + torch.arange(self.L)]
        f = self.f[idx + self.L + torch.arange(self.H)]
        y = self.y[idx + self.L + torch.arange(self.H)]
        return x, f, y


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


def save_scaler(scaler: Scaler, path: str | Path) -> None:
    Path(path).write_text(json.dumps(scaler.to_json()))


def load_scaler(path: str | Path) -> Scaler:
    return Scaler.from_json(json.loads(Path(path).read_text()))
