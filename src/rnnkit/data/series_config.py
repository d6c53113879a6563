"""SeriesConfig: which columns of a table are targets and covariates, and how it becomes windows."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import option

CALENDAR = ("hour", "dayofweek", "day", "month", "dayofyear")


@dataclass
class SeriesConfig:
    """How a table becomes forecasting windows.

    Attributes:
        target: the column(s) to forecast.
        time_column: a date/time column to parse and sort by (checked for duplicates); ``None`` keeps row order.
        series_id: a column naming the series of each row (the long format: many series in one table, one global
            model); each series is split, filled and scaled on its own. ``None``: the table is one series.
        static: columns with one value per series (e.g. a store's size or type), given to the model with every
            window of that series; numeric columns are standardised, others one-hot encoded.
        past_covariates: columns observed up to the forecast time only (e.g. other sensors).
        future_covariates: columns known ahead (e.g. a holiday flag); given for the horizon steps too.
        calendar: calendar features derived from ``time_column`` and used as future covariates, each encoded as
            sin/cos: any of ``hour``, ``dayofweek``, ``day``, ``month``, ``dayofyear``.
        timestep: lookback, the number of past steps a window reads; ``None`` picks a few seasons that fit the
            training rows (see :func:`rnnkit.data.splits.auto_timestep`).
        horizon: steps predicted.
        stride: steps between window starts.
        train, val, test: the chronological split of each series, as fractions (< 1) or row counts (>= 1).
            ``None``: val and test hold 10% and 20% of the rows but at least ``horizon`` rows each, train the
            rest; given ``train`` and ``val``, test is the rest.
        scaler: ``standard``, ``minmax`` or ``none``; fitted on each series' training rows, per column.
        missing: ``error`` (default: name the column and the rows), ``interpolate`` (linear) or ``ffill``; each
            part is filled from its own and earlier rows only (see :func:`handle_missing`).
    """

    target: list[str] = field(default_factory=list)
    time_column: str | None = None
    series_id: str | None = None
    static: list[str] = field(default_factory=list)
    past_covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    calendar: list[str] = field(default_factory=list)
    timestep: int | None = None
    horizon: int = 1
    stride: int = 1
    train: float | None = None
    val: float | None = None
    test: float | None = None
    scaler: str = "standard"
    missing: str = "error"

    def __post_init__(self) -> None:
        if isinstance(self.target, str):
            self.target = [self.target]
        if isinstance(self.static, str):
            self.static = [self.static]
        if not self.target:
            raise ValueError(f"SeriesConfig: name at least one target column with {option('target')}")
        if (self.timestep is not None and self.timestep < 1) or self.horizon < 1 or self.stride < 1:
            raise ValueError(
                f"SeriesConfig: {option('timestep')}, {option('horizon')} and {option('stride')} must be >= 1, "
                f"got {self.timestep}, {self.horizon}, {self.stride}"
            )
        for name in ("train", "val", "test"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"SeriesConfig: {option(name)} must be a fraction or a row count >= 0, got {value}")
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
        if self.static and self.series_id is None:
            raise ValueError(
                f"SeriesConfig: static covariates belong to series; name the series-id column with "
                f"{option('series_id')}"
            )
        overlap = set(self.static) & {*self.target, *self.past_covariates, *self.future_covariates}
        if overlap:
            raise ValueError(f"SeriesConfig: column(s) {sorted(overlap)} cannot be static and time-varying at once")
