"""Forecasting: a many-to-one RNN reads ``timestep`` past steps and predicts the next ``horizon`` steps.

Metrics are computed in the data's own units (MAE, RMSE, MSE, sMAPE, MASE) and, for comparison with published
tables, as MSE/MAE on the scaled data; the seasonal-naive forecast (repeat the last season) is scored beside.
With quantiles the model also gives a prediction interval, scored by the pinball loss and its coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.timeseries import (
    Scaler,
    SeriesConfig,
    SeriesData,
    WindowDataset,
    encode,
    handle_missing,
    parse_times,
    prepare_series,
    read_table,
)
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import forecast_metrics, quantile_loss, seasonal_naive
from ..topologies.base import RNNConfig
from ..topologies.many_to_one import ManyToOne, ManyToOneConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Task, prepare_out, set_seed, write_json

_SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4}


@dataclass
class ForecastConfig:
    """Forecasting task.

    Attributes:
        series: columns, lookback (``timestep``), ``horizon``, split, scaling and missing-value policy.
        rnn: the recurrent core.
        quantiles: also predict these quantiles (a prediction interval); None for a point forecast (MSE).
        relative: feed and predict the targets relative to the last observed value of each window, so the model
            forecasts changes and can follow trends beyond the training range.
        season: seasonal period for the seasonal-naive baseline and MASE; None infers it from the time column
            (hourly 24, daily 7, weekly 52, monthly 12, quarterly 4; else 1).
        batch_size: windows per training step.
        encoding: text encoding of CSV input.
        trainer: optimisation options.
    """

    series: SeriesConfig = field(default_factory=lambda: SeriesConfig(target=["y"]))
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=64))
    quantiles: tuple[float, ...] | None = (0.1, 0.5, 0.9)
    relative: bool = True
    season: int | None = None
    batch_size: int = 64
    encoding: str = "utf-8"
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(epochs=30, lr=3e-3, schedule="plateau", early_stopping=6)
    )


class ForecastNet(nn.Module):
    """``x (B, timestep, F)`` and known-future covariates ``f (B, horizon, F_f)`` -> ``(B, horizon, n[, Q])``."""

    def __init__(self, cfg: ForecastConfig, n_inputs: int, n_future: int) -> None:
        super().__init__()
        H, n = cfg.series.horizon, len(cfg.series.target)
        head = HeadConfig(kind="regression", horizon=H, output_size=n, quantiles=cfg.quantiles)
        self.net = ManyToOne(ManyToOneConfig(InputConfig(input_size=n_inputs), cfg.rnn, "last", head, H * n_future))
        self.n_targets, self.relative, self.n_future = n, cfg.relative, n_future

    def forward(self, x: Tensor, f: Tensor) -> Tensor:
        base = x[:, -1, : self.n_targets]  # (B, n): the last observed targets
        if self.relative:
            x = torch.cat([x[..., : self.n_targets] - base[:, None], x[..., self.n_targets :]], -1)
        pred = self.net(x, context=f.flatten(1) if self.n_future else None)
        if self.relative:
            shape = (base.shape[0], 1, self.n_targets) + ((1,) if pred.dim() == 4 else ())
            pred = pred + base.view(shape)
        return pred

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return self.net.head.loss(pred, y)

    def point(self, pred: Tensor) -> Tensor:
        return self.net.head.point(pred)


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
    """Seasonal period implied by the time column: hourly 24, daily 7, weekly 52, monthly 12, quarterly 4."""
    offset = infer_offset(times) if times is not None else None
    if offset is None:
        return 1
    base = offset.freqstr.split("-")[0].lstrip("0123456789")
    return _SEASONS.get(base, _SEASONS.get(base.upper(), 1))


class Forecaster(Task):
    """A trained forecaster: ``evaluate`` on windows of a series, ``predict`` the horizon after its end."""

    name = "forecast"
    Config = ForecastConfig

    def __init__(
        self, cfg: ForecastConfig, model: ForecastNet, scaler: Scaler, columns: dict[str, list[str]], season: int
    ) -> None:
        super().__init__(cfg, model)
        self.scaler, self.columns, self.season = scaler, columns, season

    def artifacts(self) -> dict[str, Any]:
        return {"scaler": self.scaler.to_json(), "columns": self.columns, "season": self.season}

    @classmethod
    def from_artifacts(cls, cfg: ForecastConfig, artifacts: dict[str, Any]) -> Forecaster:
        cols = artifacts["columns"]
        model = ForecastNet(cfg, len(cols["input"]), len(cols["future"]))
        return cls(cfg, model, Scaler.from_json(artifacts["scaler"]), cols, int(artifacts["season"]))

    # ---- training ------------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        cfg: ForecastConfig,
        data: str | Path | pd.DataFrame,
        out: str | Path,
        *,
        overwrite: bool = False,
        resume: bool = False,
    ) -> tuple[Forecaster, dict[str, Any]]:
        """Prepare the series, train, evaluate on the test part (beside seasonal naive), plot, save."""
        out = prepare_out(out, overwrite=overwrite, resume=resume)
        set_seed(cfg.trainer.seed)
        prepared = prepare_series(data, cfg.series, encoding=cfg.encoding)
        season = cfg.season or infer_season(prepared.times)
        cols = {"input": prepared.input_columns, "future": prepared.future_columns}
        task = cls(cfg, ForecastNet(cfg, len(cols["input"]), len(cols["future"])), prepared.scaler, cols, season)
        gen = torch.Generator().manual_seed(cfg.trainer.seed)
        train = DataLoader(prepared.windows("train"), batch_size=cfg.batch_size, shuffle=True, generator=gen)
        has_val = prepared.borders[1] > prepared.borders[0]
        val = DataLoader(prepared.windows("val"), batch_size=256) if has_val else None

        def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
            x, f, y = batch
            return unwrap(model).loss(model(x, f), y)

        task.fit(_Epochs(train), val, loss_fn, out, cfg.trainer, resume=resume)
        has_test = prepared.borders[2] > prepared.borders[1]
        metrics = task.evaluate_prepared(prepared, "test" if has_test else "val" if has_val else "train")
        write_json(out / "metrics.json", metrics)
        task.window_predictions(prepared, metrics["part"]).to_csv(out / "predictions.csv", index=False)
        task.plot_window(prepared, out / "forecast.png")
        return task, metrics

    # ---- inference -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, ds: WindowDataset) -> tuple[Tensor, Tensor, Tensor]:
        x, f, y = ds.tensors()
        preds = [self.model(x[i : i + 512], f[i : i + 512]) for i in range(0, len(x), 512)]
        return x, torch.cat(preds), y

    def _unscale(self, values: Tensor) -> np.ndarray:
        """``(..., n[, Q])`` scaled targets -> data units."""
        targets = self.cfg.series.target
        if values.dim() >= 4:  # quantiles last
            moved = values.movedim(-1, 0)
            return np.moveaxis(self.scaler.inverse(moved.numpy().astype(np.float64), targets), 0, -1)
        return self.scaler.inverse(values.numpy().astype(np.float64), targets)

    def evaluate(self, data: str | Path | pd.DataFrame, part: str = "all") -> dict[str, Any]:
        """Metrics on every window of ``data`` (``part="all"``) or on its train/val/test part."""
        return self.evaluate_prepared(
            prepare_series(data, self.cfg.series, scaler=self.scaler, encoding=self.cfg.encoding), part
        )

    def evaluate_prepared(self, prepared: SeriesData, part: str) -> dict[str, Any]:
        x, pred, y = self._run(prepared.windows(part))
        n = len(self.cfg.series.target)
        point = self.model.point(pred)
        y_u, point_u = self._unscale(y), self._unscale(point)
        history = self._unscale(x[..., :n])  # (N, timestep, n)
        insample = self._unscale(torch.as_tensor(prepared.targets[: prepared.borders[0]]))
        season = self.season if history.shape[1] >= self.season else 1
        naive = np.moveaxis(seasonal_naive(np.moveaxis(history, 1, -1), self.cfg.series.horizon, season), -1, 1)
        result: dict[str, Any] = {"part": part, "windows": len(y), "season": season}
        result["model"] = forecast_metrics(y_u, point_u, insample, season)
        result["model"]["mse_scaled"] = float(((point - y) ** 2).mean())
        result["model"]["mae_scaled"] = float((point - y).abs().mean())
        result["seasonal_naive"] = forecast_metrics(y_u, naive, insample, season)
        scaled_naive = (naive - np.asarray(self.scaler.shift)[:n]) / np.asarray(self.scaler.scale)[:n]
        result["seasonal_naive"]["mse_scaled"] = float(np.mean((scaled_naive - y.numpy()) ** 2))
        if self.cfg.quantiles:
            q = self._unscale(pred)
            result["model"]["quantile_loss"] = quantile_loss(y_u, q, self.cfg.quantiles)
            result["model"]["interval_coverage"] = float(np.mean((y_u >= q[..., 0]) & (y_u <= q[..., -1])))
        return result

    def window_predictions(self, prepared: SeriesData, part: str) -> pd.DataFrame:
        """One row per window and horizon step of ``part``: when the forecast was made, for when, the actual
        value, the forecast and (with quantiles) the interval, in the data's units."""
        ds = prepared.windows(part)
        _, pred, y = self._run(ds)
        T, H = self.cfg.series.timestep, self.cfg.series.horizon
        times = prepared.times.to_numpy() if prepared.times is not None else np.arange(len(prepared.values))
        origin = np.repeat(times[ds.starts + T - 1], H)
        target_idx = (ds.starts[:, None] + T + np.arange(H)[None, :]).reshape(-1)
        table = pd.DataFrame(
            {"origin": origin, "time": times[target_idx], "step": np.tile(np.arange(1, H + 1), len(ds))}
        )
        actual, point = self._unscale(y), self._unscale(self.model.point(pred))
        q = self._unscale(pred) if self.cfg.quantiles else None
        for j, name in enumerate(self.cfg.series.target):
            table[f"{name}_actual"] = actual[:, :, j].reshape(-1)
            table[name] = point[:, :, j].reshape(-1)
            for k, level in enumerate(self.cfg.quantiles or ()):
                table[f"{name}_q{level:g}"] = q[:, :, j, k].reshape(-1)  # type: ignore[index]
        return table

    @torch.no_grad()
    def predict(self, data: str | Path | pd.DataFrame) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after the last row with a target value.

        Rows after that (target empty) supply the known-future covariates for the forecast steps; calendar
        features and timestamps are extended from the time column's frequency. Returns one row per future step
        with the point forecast and, with quantiles, a column per quantile (``<target>_q0.1`` ...).
        """
        cfg = self.cfg.series
        frame = parse_times(read_table(data, encoding=self.cfg.encoding), cfg)
        known = frame[cfg.target].notna().all(axis=1).to_numpy()
        if not known.any():
            raise ValueError(f"no row has values for the target(s) {cfg.target}")
        last = int(np.flatnonzero(known)[-1])
        history, future = frame.iloc[: last + 1], frame.iloc[last + 1 : last + 1 + cfg.horizon]
        if len(history) < cfg.timestep:
            raise ValueError(f"predict needs at least timestep={cfg.timestep} rows of history, got {len(history)}")
        if cfg.future_covariates and (len(future) < cfg.horizon or future[cfg.future_covariates].isna().any().any()):
            raise ValueError(
                f"the model uses known-future covariates {cfg.future_covariates}: add {cfg.horizon} rows "
                "after the last target value with those columns filled (and the target empty)"
            )
        future = self._extend_future(history, future)
        numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
        past = handle_missing(history.iloc[-cfg.timestep :].reset_index(drop=True), numeric, cfg.missing)
        window = pd.concat([past, future], ignore_index=True)
        table, input_cols, future_cols = encode(window, cfg, self.scaler)
        x = torch.as_tensor(table[: cfg.timestep], dtype=torch.float32)[None]
        f_idx = [input_cols.index(c) for c in future_cols]
        f = torch.as_tensor(table[cfg.timestep :, f_idx], dtype=torch.float32)[None]
        pred = self.model(x, f)[0]
        out = pd.DataFrame()
        if cfg.time_column:
            out[cfg.time_column] = future[cfg.time_column].to_numpy()
        point = self._unscale(self.model.point(pred[None]))[0]
        for j, name in enumerate(cfg.target):
            out[name] = point[:, j]
        if self.cfg.quantiles:
            q = self._unscale(pred[None])[0]
            for j, name in enumerate(cfg.target):
                for k, level in enumerate(self.cfg.quantiles):
                    out[f"{name}_q{level:g}"] = q[:, j, k]
        return out

    def _extend_future(self, history: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
        """Future rows for the horizon, with timestamps continued from the history's frequency if missing."""
        cfg = self.cfg.series
        H = cfg.horizon
        if len(future) >= H or not cfg.time_column:
            return future.iloc[:H].reset_index(drop=True) if len(future) >= H else pd.DataFrame(index=range(H))
        times = history[cfg.time_column]
        freq = infer_offset(times)
        if freq is None:
            step = times.diff().median()
            stamps = [times.iloc[-1] + step * (k + 1) for k in range(H)]
        else:
            stamps = list(pd.date_range(times.iloc[-1], periods=H + 1, freq=freq)[1:])
        return pd.DataFrame({cfg.time_column: stamps})

    def plot_window(self, prepared: SeriesData, path: Path, part: str = "test") -> Path | None:
        """The last window of ``part`` (or of the series): history, forecast, interval and the actual values."""
        from ..plots import plot_forecast

        try:
            ds = prepared.windows(part)
        except ValueError:
            ds = prepared.windows("all")
        x, pred, y = self._run(ds)
        x, pred, y = x[-1:], pred[-1:], y[-1:]
        n, T, H = len(self.cfg.series.target), self.cfg.series.timestep, self.cfg.series.horizon
        start = int(ds.starts[-1])
        times = prepared.times.to_numpy() if prepared.times is not None else np.arange(len(prepared.values))
        hist_x, fut_x = times[start : start + T], times[start + T : start + T + H]
        hist = self._unscale(x[..., :n])[0, :, 0]
        point = self._unscale(self.model.point(pred))[0, :, 0]
        low = high = None
        if self.cfg.quantiles:
            q = self._unscale(pred)[0, :, 0]
            low, high = q[:, 0], q[:, -1]
        interval = f"{self.cfg.quantiles[0]:g}-{self.cfg.quantiles[-1]:g} quantiles" if self.cfg.quantiles else ""
        return plot_forecast(
            hist_x,
            hist,
            fut_x,
            point,
            low,
            high,
            path,
            actual=self._unscale(y)[0, :, 0],
            title=f"{self.cfg.series.target[0]}: last {part} window",
            interval=interval,
        )


class _Epochs:
    """A DataLoader whose shuffling is a function of the epoch (what exact resumption needs)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.seed = int(loader.generator.initial_seed()) if loader.generator is not None else 0

    def set_epoch(self, epoch: int) -> None:
        if self.loader.generator is not None:
            self.loader.generator.manual_seed(self.seed + epoch)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)
