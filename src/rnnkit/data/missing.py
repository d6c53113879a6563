"""Missing and non-finite values: fill each part of a series from its own and earlier rows only, or say which
column and rows are bad."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import option
from .tables import _where


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
