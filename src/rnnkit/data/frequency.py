"""A series' frequency and seasonal period, read from its time column; irregular time steps are named."""

from __future__ import annotations

import numpy as np
import pandas as pd

_SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4}
# calendar steps whose length in days varies: a step of 28-31 days is one month, 89-92 one quarter, ...
_CALENDAR_STEPS = ((28, 31), (89, 92), (365, 366))


def infer_offset(times: pd.Series) -> pd.DateOffset | None:
    """The regular frequency of the last timestamps (as an offset), or None if irregular."""
    recent = pd.DatetimeIndex(times.iloc[-min(len(times), 200) :])
    if len(recent) < 3:
        return None
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            freq = pd.infer_freq(recent)
    except (KeyError, pd.errors.OptionError):  # pandas without that option returns a string
        freq = pd.infer_freq(recent)
    return None if freq is None else pd.tseries.frequencies.to_offset(freq)


def infer_season(times: pd.Series | None) -> int:
    """Seasonal period implied by the time column: hourly 24, daily 7, weekly 52, monthly 12, quarterly 4; else 1."""
    offset = infer_offset(times) if times is not None else None
    if offset is None:
        return 1
    base = offset.freqstr.split("-")[0].lstrip("0123456789")
    return _SEASONS.get(base, _SEASONS.get(base.upper(), 1))


def irregular_step(times: pd.Series) -> str | None:
    """Why the time steps of ``times`` (sorted) are irregular, or None if they follow one frequency.

    A few gaps (a missing day, a dropped 31 December) are regular enough: a series is irregular when fewer than
    90% of its steps have the most common length (monthly, quarterly and yearly steps count as one length).
    """
    if len(times) < 3:
        return None
    days = np.diff(pd.DatetimeIndex(times).as_unit("ns").asi8) / 86_400e9
    for low, high in _CALENDAR_STEPS:
        days = np.where((days >= low) & (days <= high), low, days)
    lengths, counts = np.unique(np.round(days, 9), return_counts=True)
    common = int(counts.argmax())
    share = counts[common] / len(days)
    if share >= 0.9:
        return None
    other = lengths[np.argsort(-counts)[1]]
    return (
        f"only {share:.0%} of its time steps are {_span(lengths[common])} (others are {_span(other)}, ...); "
        "resample it to one frequency first"
    )


def _span(days: float) -> str:
    for low, name in zip((28, 89, 365), ("a month", "a quarter", "a year")):
        if days == low:
            return name
    seconds = float(days) * 86_400
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-6:  # "2 days", not "2 days 00:00:00"
            return f"{round(count)} {unit}{'s' if round(count) != 1 else ''}"
    return str(pd.Timedelta(seconds=seconds))
