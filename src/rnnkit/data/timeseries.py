"""Time series: from a table to scaled, chronologically split sliding windows.

A window reads ``timestep`` past steps (targets, past-observed covariates, known-future covariates) and predicts
the next ``horizon`` steps of the targets; known-future covariates are also given for those horizon steps.
Scalers are fitted on the training rows only, per column, so nothing about validation or test leaks in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

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
        missing: ``error`` (default: name the column and the rows), ``interpolate`` (linear) or ``ffill``.
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
            raise ValueError("SeriesConfig: name at least one target column")
        if self.timestep < 1 or self.horizon < 1 or self.stride < 1:
            raise ValueError(
                f"SeriesConfig: timestep, horizon and stride must be >= 1, got {self.timestep}, {self.horizon}, "
                f"{self.stride}"
            )
        if self.scaler not in ("standard", "minmax", "none"):
            raise ValueError(f"SeriesConfig: scaler must be 'standard', 'minmax' or 'none', got {self.scaler!r}")
        if self.missing not in ("error", "interpolate", "ffill"):
            raise ValueError(f"SeriesConfig: missing must be 'error', 'interpolate' or 'ffill', got {self.missing!r}")
        bad = [c for c in self.calendar if c not in CALENDAR]
        if bad:
            raise ValueError(f"SeriesConfig: unknown calendar feature(s) {bad}; expected some of {list(CALENDAR)}")
        if self.calendar and self.time_column is None:
            raise ValueError("SeriesConfig: calendar features need a time_column")


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


def read_table(source: str | Path | pd.DataFrame, *, encoding: str = "utf-8") -> pd.DataFrame:
    """A DataFrame from a DataFrame, a CSV file or a Parquet file, with errors that say what went wrong."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
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
                    "pass the file's encoding, e.g. encoding='latin-1'"
                ) from None
            except pd.errors.ParserError as exc:
                raise ValueError(f"{path}: malformed CSV ({exc})") from None
            except pd.errors.EmptyDataError:
                raise ValueError(f"{path}: no columns to read; expected a CSV with a header row") from None
    if frame.empty:
        raise ValueError(f"{source if not isinstance(source, pd.DataFrame) else 'DataFrame'}: no rows")
    return frame


def _check_columns(frame: pd.DataFrame, cfg: SeriesConfig) -> None:
    wanted = [*cfg.target, *cfg.past_covariates, *cfg.future_covariates] + (
        [cfg.time_column] if cfg.time_column else []
    )
    unknown = [c for c in wanted if c not in frame.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; the table has {list(frame.columns)}")
    for col in [*cfg.target, *cfg.past_covariates, *cfg.future_covariates]:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            sample = frame[col].dropna().astype(str).head(3).tolist()
            raise ValueError(f"column {col!r} is not numeric (values like {sample}); choose numeric target/covariates")


def handle_missing(frame: pd.DataFrame, columns: list[str], policy: str) -> pd.DataFrame:
    """Apply the missing-value policy (``error``, ``interpolate``, ``ffill``) to ``columns``."""
    missing = frame[columns].isna()
    if not missing.to_numpy().any():
        return frame
    if policy == "error":
        col = missing.any().idxmax()
        rows = np.flatnonzero(missing[col].to_numpy())
        where = f"rows {rows[:5].tolist()}" + (" ..." if len(rows) > 5 else "")
        raise ValueError(
            f"column {col!r} has {len(rows)} missing value(s) ({where}); fill them, or pass missing='interpolate' "
            "or missing='ffill'"
        )
    frame = frame.copy()
    if policy == "interpolate":
        frame[columns] = frame[columns].interpolate(method="linear", limit_direction="both")
    else:
        frame[columns] = frame[columns].ffill().bfill()
    return frame


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
        raise ValueError(f"split train={cfg.train}, val={cfg.val}, test={cfg.test} does not fit {n} rows")
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
            raise ValueError(
                f"the {part} part (rows {start}..{stop}) is too short for one window of timestep {L} + horizon {H}; "
                "use a smaller timestep/horizon or a larger split"
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
    """Check the columns, parse and sort by the time column (duplicates are an error)."""
    _check_columns(frame, cfg)
    if not cfg.time_column:
        return frame.reset_index(drop=True)
    try:
        parsed = pd.to_datetime(frame[cfg.time_column])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"time column {cfg.time_column!r} could not be parsed as dates ({exc})") from None
    if parsed.duplicated().any():
        dup = parsed[parsed.duplicated()].iloc[0]
        raise ValueError(f"time column {cfg.time_column!r} has duplicate timestamps (first: {dup})")
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
    """Read, check, order, fill, split and scale a series. Pass a fitted ``scaler`` to reuse it (evaluation)."""
    frame = parse_times(read_table(source, encoding=encoding), cfg)
    numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
    frame = handle_missing(frame, numeric, cfg.missing)
    if len(frame) < cfg.timestep + cfg.horizon:
        raise ValueError(
            f"the series has {len(frame)} rows, fewer than timestep + horizon = {cfg.timestep + cfg.horizon}: "
            "no window fits"
        )
    borders = _borders(len(frame), cfg)
    if scaler is None:
        scaler = Scaler.fit(cfg.scaler, frame.loc[: borders[0] - 1, numeric])
    table, input_cols, future_cols = encode(frame, cfg, scaler)
    future = table[:, [input_cols.index(c) for c in future_cols]]
    targets = table[:, [input_cols.index(c) for c in cfg.target]]
    times = frame[cfg.time_column] if cfg.time_column else None
    return SeriesData(cfg, table, future, targets, times, borders, scaler, input_cols, future_cols)


def save_scaler(scaler: Scaler, path: str | Path) -> None:
    Path(path).write_text(json.dumps(scaler.to_json()))


def load_scaler(path: str | Path) -> Scaler:
    return Scaler.from_json(json.loads(Path(path).read_text()))
