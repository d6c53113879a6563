"""Scoring a forecaster: the model beside seasonal naive and the linear baseline, per series and over all series.

Every evaluation fits the linear baseline (:mod:`.forecast_linear`) on the same series' training windows (its
penalty chosen on their validation windows) and scores it on the same windows as the model, so a report always
shows whether the recurrent model beats a linear one. Metrics are in the data's units (MAE, RMSE, MSE, sMAPE,
MASE) and on the scaled data (``mse_scaled``, ``mae_scaled``: what the published ETT tables use). With many series,
the errors are pooled over every window of every series, MASE is the mean of the series' MASE, and each series has
its own entry under ``"series"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data.timeseries import SeriesData, WindowDataset
from ..metrics import forecast_metrics, quantile_loss, seasonal_naive
from .forecast_linear import LinearForecast, fit_linear

if TYPE_CHECKING:
    from .forecast import Forecaster


@torch.no_grad()
def run_windows(task: Forecaster, ds: WindowDataset, size: int = 512) -> tuple[Tensor, Tensor, Tensor]:
    """``(x (N, T, F), prediction (N, H, n[, Q]), y (N, H, n))`` of every window, scaled."""
    x, f, y = ds.tensors()
    task.model.eval()
    dev = task.device
    preds = [task.model(x[i : i + size].to(dev), f[i : i + size].to(dev)).cpu() for i in range(0, len(x), size)]
    return x, torch.cat(preds) if preds else x.new_zeros(0), y


def unscale(values: Tensor | np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(N, steps, n[, Q])`` scaled targets -> data units, with one ``(N, n)`` shift and scale per window."""
    v = values.numpy() if isinstance(values, Tensor) else np.asarray(values)
    v = v.astype(np.float64)
    extra = (None,) * (v.ndim - 3)
    return v * scale[(slice(None), None, slice(None), *extra)] + shift[(slice(None), None, slice(None), *extra)]


def target_affine(task: Forecaster, prepared: SeriesData) -> tuple[np.ndarray, np.ndarray]:
    """``(shift (S, n), scale (S, n))`` of the targets of each series of ``prepared``."""
    targets = task.cfg.series.target
    idx = [[s.columns.index(c) for c in targets] for s in prepared.scalers]
    shift = np.asarray([np.asarray(s.shift)[i] for s, i in zip(prepared.scalers, idx)], dtype=np.float64)
    scale = np.asarray([np.asarray(s.scale)[i] for s, i in zip(prepared.scalers, idx)], dtype=np.float64)
    return shift, scale


def linear_baseline(task: Forecaster, prepared: SeriesData) -> LinearForecast:
    """The linear model fitted on ``prepared``'s training windows (penalty chosen on its validation windows)."""
    cfg = task.cfg.series
    model = LinearForecast(cfg.timestep, cfg.horizon)
    n = len(cfg.target)

    def relative(ds: WindowDataset) -> tuple[Tensor, Tensor]:
        x, _, y = ds.tensors()
        xr, base = task.model.relative_inputs(x)
        return xr[..., :n], y - base[:, None]

    try:
        val = relative(prepared.windows("val"))
    except ValueError:
        val = None
    fit_linear(model, relative(prepared.windows("train")), val, task.season)
    return model


@torch.no_grad()
def linear_predictions(task: Forecaster, model: LinearForecast, x: Tensor) -> Tensor:
    n = len(task.cfg.series.target)
    xr, base = task.model.relative_inputs(x)
    return model(xr[..., :n]) + base[:, None]


def score(task: Forecaster, prepared: SeriesData, part: str) -> dict[str, Any]:
    """Metrics of the model, seasonal naive and the linear baseline on the windows of ``part``."""
    ds = prepared.windows(part)
    x, pred, y = run_windows(task, ds)
    cfg, n = task.cfg.series, len(task.cfg.series.target)
    shift, scale = target_affine(task, prepared)
    sh, sc = shift[ds.series], scale[ds.series]
    point = task.model.point(pred)
    history = unscale(x[..., :n], sh, sc)
    season = task.season if history.shape[1] >= task.season else 1
    naive = np.moveaxis(seasonal_naive(np.moveaxis(history, 1, -1), cfg.horizon, season), -1, 1)
    linear = linear_predictions(task, linear_baseline(task, prepared), x)
    forecasts = {
        "model": (unscale(point, sh, sc), point.numpy()),
        "seasonal_naive": (naive, (naive - sh[:, None]) / sc[:, None]),
        "linear": (unscale(linear, sh, sc), linear.numpy()),
    }
    y_u, y_s = unscale(y, sh, sc), y.numpy()
    q = unscale(pred, sh, sc) if task.cfg.quantiles else None
    insample = []  # each series' training targets in data units: MASE's scale
    for i in range(len(prepared.ids)):
        lo, hi = prepared.part_range(i, "train")
        insample.append(prepared.targets[lo:hi] * scale[i] + shift[i])

    def metrics(rows: np.ndarray, series: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (units, scaled) in forecasts.items():
            per = [
                _mase(y_u[rows][ds.series[rows] == i], units[rows][ds.series[rows] == i], insample[i], season)
                for i in series
            ]
            m = forecast_metrics(y_u[rows], units[rows], insample[series[0]], season)
            m["mase"] = float(np.mean(per))
            m["mse_scaled"] = float(np.mean((scaled[rows] - y_s[rows]) ** 2))
            m["mae_scaled"] = float(np.mean(np.abs(scaled[rows] - y_s[rows])))
            out[name] = m
        if q is not None:
            out["model"]["quantile_loss"] = quantile_loss(y_u[rows], q[rows], task.cfg.quantiles)
            out["model"]["interval_coverage"] = float(
                np.mean((y_u[rows] >= q[rows][..., 0]) & (y_u[rows] <= q[rows][..., -1]))
            )
        return out

    every = np.arange(len(ds))
    result: dict[str, Any] = {"part": part, "windows": len(ds), "season": season}
    present = sorted(set(ds.series.tolist()))
    result |= metrics(every, present)
    if cfg.series_id is not None:
        result["series"] = {
            prepared.ids[i]: {"windows": int((ds.series == i).sum()), **metrics(np.flatnonzero(ds.series == i), [i])}
            for i in present
        }
    if prepared.skipped:
        result["skipped_series"] = dict(prepared.skipped)
    return result


def _mase(y: np.ndarray, pred: np.ndarray, insample: np.ndarray, season: int) -> float:
    return forecast_metrics(y, pred, insample, season)["mase"]


def window_table(task: Forecaster, prepared: SeriesData, part: str) -> pd.DataFrame:
    """One row per window and horizon step of ``part``: (the series,) when the forecast was made, for when, the
    actual value, the forecast and (with quantiles) the interval, in the data's units."""
    ds = prepared.windows(part)
    _, pred, y = run_windows(task, ds)
    cfg = task.cfg.series
    T, H = cfg.timestep, cfg.horizon
    shift, scale = target_affine(task, prepared)
    sh, sc = shift[ds.series], scale[ds.series]
    times = prepared.times.to_numpy() if prepared.times is not None else _positions(prepared)
    target_idx = (ds.starts[:, None] + T + np.arange(H)[None, :]).reshape(-1)
    table = pd.DataFrame()
    if cfg.series_id is not None:
        table[cfg.series_id] = np.repeat(np.asarray(prepared.ids, dtype=object)[ds.series], H)
    table["origin"] = np.repeat(times[ds.starts + T - 1], H)
    table["time"] = times[target_idx]
    table["step"] = np.tile(np.arange(1, H + 1), len(ds))
    actual, point = unscale(y, sh, sc), unscale(task.model.point(pred), sh, sc)
    q = unscale(pred, sh, sc) if task.cfg.quantiles else None
    for j, name in enumerate(cfg.target):
        table[f"{name}_actual"] = actual[:, :, j].reshape(-1)
        table[name] = point[:, :, j].reshape(-1)
        for k, level in enumerate(task.cfg.quantiles or ()):
            table[f"{name}_q{level:g}"] = q[:, :, j, k].reshape(-1)  # type: ignore[index]
    return table


def _positions(prepared: SeriesData) -> np.ndarray:
    """Row numbers within each series (what a table without a time column has instead of times)."""
    out = np.zeros(len(prepared.values), dtype=np.int64)
    for i in range(len(prepared.ids)):
        rows = prepared.rows(i)
        out[rows] = np.arange(rows.stop - rows.start)
    return out
