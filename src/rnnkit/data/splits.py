"""The chronological split of a series into train, validation and test rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import option

if TYPE_CHECKING:
    from .timeseries import SeriesConfig


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
