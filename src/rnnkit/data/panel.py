"""Many series in one table (the long format: one row per series and time step) and their static covariates.

:func:`split_series` cuts a table into its series, checking what a global model needs: every row has a series
id, no (series, time) pair repeats, each series steps at one frequency, and static covariates are constant within
a series. :class:`StaticEncoder` turns static covariates into numbers: numeric columns standardised over the
training series, other columns one-hot over the categories seen in training (an unseen category is all zeros).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import option
from .frequency import irregular_step
from .tables import _row

if TYPE_CHECKING:
    from .timeseries import SeriesConfig


def split_series(frame: pd.DataFrame, cfg: SeriesConfig) -> list[tuple[str, pd.DataFrame]]:
    """``[(series id, its rows in time order)]`` in order of first appearance; the whole table is one series
    (id ``""``) without ``cfg.series_id``. Errors name the column, the series and the fix."""
    col = cfg.series_id
    if col is None:
        return [("", frame)]
    if col not in frame.columns:
        raise ValueError(f"series-id column {col!r} is not in the table; it has {list(frame.columns)}")
    check_ids(frame, col)
    ids = frame[col]
    groups = [(str(key), part) for key, part in frame.groupby(ids.astype(str), sort=False)]
    for name, part in groups:
        _check_series(name, part, cfg)
    return groups


def check_ids(frame: pd.DataFrame, col: str) -> None:
    """Every row of ``frame`` has a series id in ``col``, else an error naming the first empty row (its line of
    the CSV file when ``frame`` is the file as read)."""
    empty = frame[col].isna().to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        where = _row(frame, row)
        raise ValueError(
            f"series-id column {col!r} ({option('series_id')}) is empty in {int(empty.sum())} row(s) (first: "
            f"{where}); give every row its series id or drop those rows"
        )


def _check_series(name: str, part: pd.DataFrame, cfg: SeriesConfig) -> None:
    t = cfg.time_column
    if t is not None:
        times = pd.to_datetime(part[t])
        dup = times[times.duplicated()]
        if len(dup):
            raise ValueError(
                f"series {name!r} has {len(dup)} duplicated ({cfg.series_id}, {t}) pair(s), first at "
                f"{dup.iloc[0]}; keep one row per series and time step (e.g. aggregate the duplicates)"
            )
        why = irregular_step(times.sort_values())
        if why is not None:
            raise ValueError(f"series {name!r} in column {t!r} has an irregular frequency: {why}")
    for col in cfg.static:
        values = part[col].dropna().unique()
        if len(values) > 1:
            raise ValueError(
                f"static covariate {col!r} varies within series {name!r} ({_few(values)}); a static covariate has "
                f"one value per series: pass time-varying columns with {option('past_covariates')} instead"
            )


def _few(values: np.ndarray) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:3])
    return shown + (", ..." if len(values) > 3 else "")


@dataclass
class StaticEncoder:
    """Static covariates -> numbers per series; JSON round-trips.

    Attributes:
        numeric: numeric columns and their (mean, std) over the training series.
        categories: other columns and their categories seen in training (one-hot).
    """

    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, rows: pd.DataFrame, columns: list[str]) -> StaticEncoder:
        """Fit on ``rows``: one row per series (its static values)."""
        enc = cls()
        for col in columns:
            values = rows[col]
            if pd.api.types.is_numeric_dtype(values):
                mean, std = float(values.mean()), float(values.std(ddof=0))
                enc.numeric[col] = (mean, std if std > 0 else 1.0)
            else:
                enc.categories[col] = sorted(values.dropna().astype(str).unique().tolist())
        return enc

    @property
    def names(self) -> list[str]:
        """The encoded columns, in order."""
        out = list(self.numeric)
        for col, cats in self.categories.items():
            out += [f"{col}={c}" for c in cats]
        return out

    def transform(self, row: pd.Series) -> np.ndarray:
        """One series' static values -> ``(len(names),)``; a missing numeric value becomes the mean (0)."""
        out = []
        for col, (mean, std) in self.numeric.items():
            v = row[col]
            out.append(0.0 if pd.isna(v) else (float(v) - mean) / std)
        for col, cats in self.categories.items():
            out += [float(str(row[col]) == c) for c in cats]
        return np.asarray(out, dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"numeric": {k: list(v) for k, v in self.numeric.items()}, "categories": self.categories}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StaticEncoder:
        return cls({k: (float(v[0]), float(v[1])) for k, v in data["numeric"].items()}, dict(data["categories"]))


def static_rows(groups: list[tuple[str, pd.DataFrame]], columns: list[str]) -> pd.DataFrame:
    """One row per series with its static values (the first non-empty one)."""
    rows = [part[columns].bfill().iloc[0] if len(part) else pd.Series(index=columns) for _, part in groups]
    return pd.DataFrame(rows, index=[name for name, _ in groups]).reset_index(drop=True)
