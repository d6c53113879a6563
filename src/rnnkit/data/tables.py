"""Reading a table (CSV, Parquet or a DataFrame) and turning its columns into numbers, with errors that say which
row and value is wrong and where it is in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import option

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
                sep = "\t" if path.suffix.lower() == ".tsv" else ","
                frame = pd.read_csv(path, encoding=encoding, sep=sep)
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}: not valid {encoding} ({exc.reason} at byte {exc.start}); "
                    f"pass the file's encoding, e.g. {option('encoding', 'latin-1')}"
                ) from None
            except pd.errors.ParserError as exc:
                detail = " ".join(str(exc).split())  # pandas ends its message with a newline
                raise ValueError(
                    f"{path}: malformed CSV ({detail}); every row needs as many comma-separated fields as the "
                    "header (quote fields that contain commas)"
                ) from None
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


def _row(frame: pd.DataFrame, i: int) -> str:
    """Where row ``i`` (0-based position) is: ``row i, line i + 2 of FILE`` for a CSV file as read, else ``row i,
    counting from 0``."""
    source = frame.attrs.get(_CSV_SOURCE)
    return f"row {i}, line {i + 2} of {source}" if source else f"row {i}, counting from 0"


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
