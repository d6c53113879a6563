"""Backtests: forecasts from rolling origins over the test part of each series, as if made at each origin.

For ``k`` origins spread evenly over the test part (the first at its start, the last ``horizon`` steps before its
end), the forecaster reads only the rows before each origin: its window is cut from the table truncated there, so
no later value (target or past covariate) can reach it; the known-future covariates of the ``horizon`` rows after
the origin are given, as they would be. The model is fixed, or (``retrain``) trained afresh at each origin on all
rows before it (the last 10% of them, at least a horizon, for early stopping). Seasonal naive and the linear
baseline (fitted on the same training rows as the model) are scored beside.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..data.panel import split_series
from ..data.splits import plan_split
from ..data.timeseries import parse_times, read_table
from ..errors import option
from ..metrics import mae, rmse, smape
from .forecast_linear import LinearForecast
from .forecast_report import linear_baseline, linear_predictions, unscale
from .rundir import check_writable

if TYPE_CHECKING:
    from .base import Inputs
    from .forecast import Forecaster


def origins(test: tuple[int, int], horizon: int, k: int, name: str = "") -> np.ndarray:
    """``k`` origins (rows before which the forecast is made) spread evenly over the test rows ``[start, stop)``."""
    start, stop = test
    most = stop - start - horizon + 1
    if k > most:
        of = f" of series {name!r}" if name else ""
        raise ValueError(
            f"{option('backtest', k)} is larger than the test part{of} allows: {stop - start} rows with horizon "
            f"{horizon} give at most {max(most, 0)} origins; use {option('backtest', max(most, 1))} or a larger "
            f"{option('test')} part"
        )
    return np.unique(np.round(np.linspace(start, stop - horizon, k)).astype(np.int64))


def backtest(task: Forecaster, data: str | Path | pd.DataFrame, k: int, *, retrain: bool = False) -> pd.DataFrame:
    """One row per series, origin, target and step: ``series, origin`` (time of the last row read), ``time``,
    ``step``, ``target``, ``actual``, ``forecast``, ``lower`` / ``upper`` (the outer quantiles), ``seasonal_naive``
    and ``linear`` (the linear baseline, fitted on the training windows: of ``data`` for the fixed model, of the rows
    before each origin with ``retrain``), in the data's units. Series too short for the split are left out and
    named, with the reason, in ``table.attrs["skipped_series"]``."""
    _check_k(k)
    cfg = task.cfg.series
    frame = parse_times(read_table(data, encoding=task.cfg.encoding), cfg)
    tests, skipped = [], {}
    for name, part in split_series(frame, cfg):
        borders, why = plan_split(len(part), cfg, name)
        if borders is None or borders[2] - borders[1] < cfg.horizon:  # too short (skipped in training too)
            skipped[name] = why or f"series {name!r}: no test part of at least the horizon ({cfg.horizon} rows)"
            continue
        tests.append((name, part.reset_index(drop=True), (borders[1], borders[2])))
    if not tests:
        raise ValueError(
            f"no series has a test part of at least the horizon ({cfg.horizon} rows); set {option('test')}"
        )
    # the series with the shortest test part first: the fix its error suggests fits every series
    fewest = min(tests, key=lambda t: t[2][1] - t[2][0])
    origins(fewest[2], cfg.horizon, k, fewest[0])
    plans = [(name, part, origins(test, cfg.horizon, k, name)) for name, part, test in tests]
    models = _retrained(task, plans) if retrain else None
    fixed = (task, linear_baseline(task, task.prepare(frame))) if models is None else None
    tables = []
    for j in range(max(len(o) for _, _, o in plans)):
        model, linear = models[j] if models is not None else fixed  # type: ignore[misc]
        chosen = [(name, part, int(o[j])) for name, part, o in plans if j < len(o)]
        tables.append(_forecast(model, linear, chosen))
    table = pd.concat(tables, ignore_index=True).sort_values(["series", "origin", "target", "step"], kind="stable")
    table = table.reset_index(drop=True)
    table.attrs["skipped_series"] = skipped
    return table


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"{option('backtest', k)}: give the number of origins, 1 or more")


def _retrained(task: Forecaster, plans: list) -> list[tuple[Forecaster, LinearForecast]]:
    """A model and a linear baseline per origin index, trained on the rows before that origin of every series."""
    cfg = task.cfg
    series = replace(cfg.series, train=None, val=None, test=0)
    trainer = replace(cfg.trainer, progress=False, checkpoint_minutes=None)
    retrain_cfg = replace(cfg, series=series, trainer=trainer)
    out = []
    for j in range(max(len(o) for _, _, o in plans)):
        history = pd.concat([part.iloc[: int(o[j])] for _, part, o in plans if j < len(o)], ignore_index=True)
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = type(task).run_training(retrain_cfg, history, Path(tmp) / "run")
        out.append((model, linear_baseline(model, model.prepare(history))))
    return out


@torch.no_grad()
def _forecast(task: Forecaster, linear: LinearForecast, chosen: list[tuple[str, pd.DataFrame, int]]) -> pd.DataFrame:
    """The forecasts of ``task`` and of the ``linear`` baseline at one origin per series, from the rows before it
    only."""
    cfg = task.cfg.series
    H = cfg.horizon
    hidden = [*cfg.target, *cfg.past_covariates]  # never known after the origin
    xs, fs, shifts, scales = [], [], [], []
    for name, part, o in chosen:
        future = part.iloc[o : o + H].copy()
        future[hidden] = np.nan
        x, f, _, scaler = task.window_inputs(part.iloc[:o], future, name)
        xs.append(x), fs.append(f)
        shifts.append([scaler.shift[scaler.columns.index(c)] for c in cfg.target])
        scales.append([scaler.scale[scaler.columns.index(c)] for c in cfg.target])
    task.model.eval()
    x = torch.as_tensor(np.stack(xs), dtype=torch.float32).to(task.device)
    f = torch.as_tensor(np.stack(fs), dtype=torch.float32).to(task.device)
    pred = task.model(x, f).cpu()
    shift, scale = np.asarray(shifts), np.asarray(scales)
    point = unscale(task.model.point(pred), shift, scale)
    lin = unscale(linear_predictions(task, linear, x.cpu()), shift, scale)
    q = unscale(pred, shift, scale) if task.cfg.quantiles else None
    rows = []
    season = task.season
    for b, (name, part, o) in enumerate(chosen):
        times = part[cfg.time_column] if cfg.time_column else pd.Series(np.arange(len(part)))
        for j, target in enumerate(cfg.target):
            past = part[target].iloc[:o].to_numpy(dtype=np.float64)
            s = season if len(past) >= season else 1
            naive = past[len(past) - s + (np.arange(H) % s)]
            rows.append(
                pd.DataFrame(
                    {
                        "series": name or "series",
                        "origin": times.iloc[o - 1],
                        "time": times.iloc[o : o + H].to_numpy(),
                        "step": np.arange(1, H + 1),
                        "target": target,
                        "actual": part[target].iloc[o : o + H].to_numpy(dtype=np.float64),
                        "forecast": point[b, :, j],
                        "lower": q[b, :, j, 0] if q is not None else np.nan,
                        "upper": q[b, :, j, -1] if q is not None else np.nan,
                        "seasonal_naive": naive,
                        "linear": lin[b, :, j],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """MAE, RMSE and sMAPE of the forecasts, of seasonal naive and of the linear baseline (and the interval's
    coverage), over all rows and per series; ``origins`` counts the origins of a series (the most of any series)."""

    def one(rows: pd.DataFrame) -> dict[str, Any]:
        ok = rows["actual"].notna()
        y = rows.loc[ok, "actual"].to_numpy()
        per_series = rows.groupby("series", sort=False)["origin"].nunique()
        out: dict[str, Any] = {"origins": int(per_series.max()), "forecasts": int(ok.sum())}
        for key in ("forecast", "seasonal_naive", "linear"):
            p = rows.loc[ok, key].to_numpy()
            out["model" if key == "forecast" else key] = {"mae": mae(y, p), "rmse": rmse(y, p), "smape": smape(y, p)}
        if rows["lower"].notna().any():
            inside = (rows.loc[ok, "actual"] >= rows.loc[ok, "lower"]) & (
                rows.loc[ok, "actual"] <= rows.loc[ok, "upper"]
            )
            out["model"]["interval_coverage"] = float(inside.mean())
        return out

    result = one(table)
    if table["series"].nunique() > 1:
        result["series"] = {str(name): one(rows) for name, rows in table.groupby("series", sort=False)}
    if table.attrs.get("skipped_series"):
        result["skipped_series"] = dict(table.attrs["skipped_series"])
    return result


def backtest_inputs(task: Forecaster, inputs: Inputs) -> dict[str, Any]:
    """``rnnkit evaluate RUN --data F --backtest K [--retrain]``: the backtest's summary; ``backtest.csv`` and
    ``backtest.png`` written into the run directory (refusing to replace earlier ones without --overwrite)."""
    k = int(inputs.backtest)  # type: ignore[arg-type]
    _check_k(k)  # before any file is looked at: the first error is the one to fix
    targets: list[Path] = []
    if inputs.run is not None:
        targets = [
            check_writable(Path(inputs.run) / name, inputs.overwrite) for name in ("backtest.csv", "backtest.png")
        ]
    table = backtest(task, inputs.data, k, retrain=inputs.retrain)  # type: ignore[arg-type]
    result = {"backtest": {"retrain": bool(inputs.retrain), **summary(table)}}
    if targets:
        _write_csv(table, targets[0])
        _plot(task, inputs.data, table, targets[1])  # type: ignore[arg-type]
        result["files"] = [str(p) for p in targets]
    return result


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    """Written to a temporary file first: a failure never leaves half a file where an earlier one was."""
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _plot(task: Forecaster, data: Any, table: pd.DataFrame, path: Path) -> None:
    from .forecast_plots import plot_backtest

    cfg = task.cfg.series
    frame = parse_times(read_table(data, encoding=task.cfg.encoding), cfg)
    history = {}
    for name, part in split_series(frame, cfg):
        part = part.reset_index(drop=True)
        sid = name or "series"
        rows = table[table["series"] == sid]
        if rows.empty:
            continue
        times = part[cfg.time_column] if cfg.time_column else pd.Series(np.arange(len(part)))
        first = int(np.searchsorted(times.to_numpy(), rows["origin"].min())) - 2 * cfg.horizon
        lo = max(first, 0)
        last = int(np.searchsorted(times.to_numpy(), rows["time"].max(), side="right"))
        history[sid] = (times.iloc[lo:last].to_numpy(), part[cfg.target[0]].iloc[lo:last].to_numpy())
    tmp = path.with_name(f".{path.stem}.tmp.png")
    plot_backtest(task, history, table, tmp)
    os.replace(tmp, path)
