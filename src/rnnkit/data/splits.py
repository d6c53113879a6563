"""The chronological split of a series into train, validation and test rows, and the default lookback.

Defaults adapt to the series: validation and test hold at least one horizon of rows each (10% and 20% of a long
series), training the rest; the lookback is a few seasons that fit the training rows (see :func:`auto_timestep`).
Given sizes are kept, and when they leave a part without a window the error names values that do fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import option

if TYPE_CHECKING:
    from .series_config import SeriesConfig

#: the longest default lookback, unless a single season is longer (a longer window mostly costs time)
MAX_LOOKBACK = 336


def _rows(v: float, n: int) -> int:
    return round(v * n) if v < 1 else int(v)


def _borders(n: int, cfg: SeriesConfig) -> tuple[int, int, int]:
    """Rows where train, val and test end for a series of ``n`` rows."""
    H = cfg.horizon
    val = _rows(cfg.val, n) if cfg.val is not None else max(round(0.1 * n), H)
    if cfg.test is not None:
        test = _rows(cfg.test, n)
    elif cfg.train is not None:
        test = n - _rows(cfg.train, n) - val  # "the rest"
    else:
        test = max(round(0.2 * n), H)
    train = _rows(cfg.train, n) if cfg.train is not None else n - val - test
    if train < 1 or val < 0 or test < 0 or train + val + test > n:
        given = [option(k, getattr(cfg, k)) for k in ("train", "val", "test") if getattr(cfg, k) is not None]
        what = f"the split {', '.join(given)}" if given else "the default split"
        raise ValueError(
            f"{what} does not fit {n} rows: the training part needs at least one row and the parts at most {n} "
            f"together; change {option('train')}, {option('val')} or {option('test')}"
        )
    return train, train + val, train + val + test


def auto_timestep(train_rows: int, horizon: int, season: int) -> int:
    """The default lookback: 3, 2 or 1 seasons, the most that leaves at least as many training windows as
    lookback steps (and at most :data:`MAX_LOOKBACK`, unless one season is longer); without a season (or when
    none fits) ``max(2 * horizon, 24)``, cut to what fits."""
    cap = (train_rows - horizon + 1) // 2  # training windows >= lookback
    if season > 1:
        for k in (3, 2, 1):
            if k * season <= min(cap, max(MAX_LOOKBACK, season)):
                return k * season
    return max(1, min(cap, max(2 * horizon, 24), MAX_LOOKBACK))


def plan_split(n: int, cfg: SeriesConfig, name: str = "") -> tuple[tuple[int, int, int] | None, str | None]:
    """``(borders, None)`` for a series of ``n`` rows whose non-empty parts each hold a window, else ``(None, why)``
    with a message whose suggested values fit."""
    L, H = cfg.timestep, cfg.horizon
    of = f"series {name!r}: " if name else ""
    if n < L + H:
        fix = f"use a smaller {option('timestep')} or {option('horizon')}"
        return None, f"{of}the series has {n} rows, fewer than timestep + horizon = {L + H}: no window fits; {fix}"
    try:
        borders = _borders(n, cfg)
    except ValueError as exc:
        return None, f"{of}{exc}"
    train, val, test = borders[0], borders[1] - borders[0], borders[2] - borders[1]
    if train < L + H:
        longest = train - H
        fix = f"{option('timestep', longest)} or less" if longest >= 1 else f"a larger {option('train')} part"
        return None, (
            f"{of}the train part ({train} rows) is too short for one window of timestep {L} + horizon {H}; "
            f"use {fix}, or a smaller {option('horizon')}"
        )
    for part, rows in (("val", val), ("test", test)):
        if 0 < rows < H:
            return None, (
                f"{of}the {part} part ({rows} rows) is too short for one window: it needs at least the horizon, "
                f"{H} rows; use {option(part, H)} or more, or {option(part, 0)} for none"
            )
    return borders, None
