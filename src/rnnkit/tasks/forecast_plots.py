"""A forecaster's pictures: the last held-out window, a forecast after the data, and a backtest's origins."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.timeseries import SeriesData
from .forecast_report import run_windows, target_affine, unscale

if TYPE_CHECKING:
    from .forecast import Forecaster


def plot_window(task: Forecaster, prepared: SeriesData, path: Path, part: str = "test") -> Path | None:
    """The last window of ``part`` (or of the series) of the first series: history, forecast, interval and the
    actual values."""
    from ..plots import plot_forecast

    try:
        ds = prepared.windows(part)
    except ValueError:
        ds = prepared.windows("all")
    ds = ds.subset(np.flatnonzero(ds.series == ds.series[0])[-1:])
    x, pred, y = run_windows(task, ds)
    cfg = task.cfg
    n, T, H = len(cfg.series.target), cfg.series.timestep, cfg.series.horizon
    shift, scale = target_affine(task, prepared)
    sh, sc = shift[ds.series], scale[ds.series]
    start = int(ds.starts[-1])
    times = prepared.times.to_numpy() if prepared.times is not None else np.arange(len(prepared.values))
    hist_x, fut_x = times[start : start + T], times[start + T : start + T + H]
    hist = unscale(x[..., :n], sh, sc)[0, :, 0]
    point = unscale(task.model.point(pred), sh, sc)[0, :, 0]
    low = high = None
    if cfg.quantiles:
        q = unscale(pred, sh, sc)[0, :, 0]
        low, high = q[:, 0], q[:, -1]
    interval = f"{cfg.quantiles[0]:g}-{cfg.quantiles[-1]:g} quantiles" if cfg.quantiles else ""
    name = cfg.series.target[0] + (f" of {prepared.ids[int(ds.series[0])]}" if cfg.series.series_id else "")
    return plot_forecast(
        hist_x,
        hist,
        fut_x,
        point,
        low,
        high,
        path,
        actual=unscale(y, sh, sc)[0, :, 0],
        title=f"{name}: last {part} window",
        interval=interval,
    )


def plot_prediction(task: Forecaster, frame: pd.DataFrame, table: pd.DataFrame, picture: Path) -> Path | None:
    """The last ``3 * timestep`` observed rows of ``frame`` (of its first series) and the forecast ``table`` after
    them (PNG)."""
    from ..plots import plot_forecast

    cfg = task.cfg.series
    if cfg.series_id:
        first = table[cfg.series_id].iloc[0]
        frame = frame[frame[cfg.series_id].astype(str) == str(first)]
        table = table[table[cfg.series_id] == first]
    frame = frame[frame[cfg.target].notna().all(axis=1)].tail(3 * cfg.timestep)
    name = cfg.target[0]
    title = f"{name} of {first}: forecast" if cfg.series_id else f"{name}: forecast"
    x = frame[cfg.time_column] if cfg.time_column else range(len(frame))
    fx = table[cfg.time_column] if cfg.time_column else range(len(frame), len(frame) + len(table))
    low = high = None
    if task.cfg.quantiles:
        low, high = table[f"{name}_q{task.cfg.quantiles[0]:g}"], table[f"{name}_q{task.cfg.quantiles[-1]:g}"]
    return plot_forecast(x, frame[name], fx, table[name], low, high, picture, title=title)


def plot_backtest(task: Forecaster, history: dict[str, Any], table: pd.DataFrame, path: Path) -> Path:
    """Each origin's forecast (and interval) over the actual series, one panel per series (at most 6)."""
    import matplotlib.pyplot as plt

    cfg = task.cfg.series
    name = cfg.target[0]
    ids = list(dict.fromkeys(table["series"])) if "series" in table else [""]
    shown = ids[:6]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 3 * len(shown)), squeeze=False)
    for ax, sid in zip(axes[:, 0], shown):
        rows = table[table["series"] == sid] if "series" in table else table
        hx, hy = history[sid]
        ax.plot(hx, hy, color="0.3", lw=1, label="actual")
        for k, (_, one) in enumerate(rows[rows["target"] == name].groupby("origin", sort=True)):
            ax.plot(one["time"], one["forecast"], color="C0", lw=1.5, label="forecast" if k == 0 else None)
            if "lower" in one and one["lower"].notna().all():
                band = f"{task.cfg.quantiles[0]:g}-{task.cfg.quantiles[-1]:g} quantiles" if k == 0 else None
                ax.fill_between(one["time"], one["lower"], one["upper"], color="C0", alpha=0.2, lw=0, label=band)
            ax.axvline(one["origin"].iloc[0], color="C3", lw=0.5, alpha=0.5, label="origin" if k == 0 else None)
        ax.set_title(f"{name}{f' of {sid}' if sid else ''}: backtest, {rows['origin'].nunique()} origins")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
