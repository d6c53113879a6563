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
from ..training import distributed as D
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Inputs, Splits, Task
from .flags import Flag, parse_floats

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
        default_factory=lambda: TrainerConfig(
            epochs=None, max_epochs=200, min_steps=500, lr=3e-3, schedule="plateau", early_stopping=10
        )
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


def _quantiles(text: str) -> tuple[float, ...] | None:
    return None if text.strip().lower() == "none" else parse_floats(text, "--quantiles")


class Forecaster(Task):
    """A trained forecaster: ``evaluate`` on windows of a series, ``predict`` the horizon after its end."""

    name = "forecast"
    Config = ForecastConfig
    summary = "Forecast a time series: many-to-one RNN, horizon steps at once, with a prediction interval."
    example = (
        "rnnkit train forecast --data sales.csv --target sales --time-column date --timestep 48 --horizon 12 "
        "--cell lstm --out runs/sales"
    )
    outputs = ("predictions.csv", "forecast.png")
    flags = (
        Flag("data", "--data", "CSV or Parquet file with the series", Path, required=True),
        Flag("target", "--target", "column(s) to forecast", key="series.target", multiple=True),
        Flag("time_column", "--time-column", "date/time column (parsed and sorted by)", key="series.time_column"),
        Flag("past", "--past", "past-observed covariate column(s)", key="series.past_covariates", multiple=True),
        Flag("future", "--future", "known-future covariate column(s)", key="series.future_covariates", multiple=True),
        Flag(
            "calendar",
            "--calendar",
            "calendar features: hour, dayofweek, day, month, dayofyear",
            key="series.calendar",
            multiple=True,
        ),
        Flag("timestep", "--timestep", "lookback: past steps each forecast reads", int, key="series.timestep"),
        Flag("horizon", "--horizon", "future steps predicted", int, key="series.horizon"),
        Flag("train_part", "--train", "train part: fraction (<1) or rows", float, key="series.train"),
        Flag("val_part", "--val", "validation part: fraction (<1) or rows", float, key="series.val"),
        Flag("test_part", "--test", "test part: fraction or rows (default: the rest)", float, key="series.test"),
        Flag("missing", "--missing", "missing values: error, interpolate or ffill", key="series.missing"),
        Flag(
            "quantiles",
            "--quantiles",
            "prediction-interval quantiles, e.g. 0.1,0.5,0.9 ('none' for a point forecast)",
            key="quantiles",
            parse=_quantiles,
        ),
        Flag(
            "season",
            "--season",
            "seasonal period for the naive baseline and MASE (default: inferred)",
            int,
            key="season",
        ),
        Flag("encoding", "--encoding", "text encoding of the CSV", key="encoding"),
    )

    def __init__(
        self, cfg: ForecastConfig, model: ForecastNet, scaler: Scaler, columns: dict[str, list[str]], season: int
    ) -> None:
        super().__init__(cfg, model)
        self.scaler, self.columns, self.season = scaler, columns, season

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: ForecastConfig, source: Any) -> pd.DataFrame:
        return read_table(source, encoding=cfg.encoding)

    @classmethod
    def split(cls, cfg: ForecastConfig, data: pd.DataFrame, dev: Any = None, test: Any = None) -> Splits:
        """Chronological parts of one table (``series.train/val/test``); the scaler is fitted on the train rows."""
        if dev is not None or test is not None:
            raise ValueError("a forecaster splits one table by time; set the parts with --train, --val and --test")
        prepared = prepare_series(data, cfg.series, encoding=cfg.encoding)
        train, val, test_end = prepared.borders
        return Splits(
            prepared.windows("train"),
            prepared.windows("val") if val > train else None,
            prepared.windows("test") if test_end > val else None,
        )

    @classmethod
    def build(cls, cfg: ForecastConfig, train: WindowDataset) -> Forecaster:
        prepared = train.data
        season = cfg.season or infer_season(prepared.times)
        cols = {"input": prepared.input_columns, "future": prepared.future_columns}
        return cls(cfg, ForecastNet(cfg, len(cols["input"]), len(cols["future"])), prepared.scaler, cols, season)

    def loader(self, examples: WindowDataset, *, train: bool) -> Any:
        if not train:
            return DataLoader(examples, batch_size=256)
        seed = self.cfg.trainer.seed
        sampler = D.shard_sampler(examples, shuffle=True, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            examples, batch_size=self.cfg.batch_size, shuffle=sampler is None, sampler=sampler, generator=gen
        )
        return _Epochs(loader)

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        x, f, y = batch
        return unwrap(model).loss(model(x, f), y)

    def report(self, out: Path, splits: Splits) -> dict[str, Any]:
        """Metrics on the test part (else val, else train) beside seasonal naive; its predictions and a plot."""
        part = "test" if splits.test is not None else "val" if splits.val is not None else "train"
        prepared = splits.train.data
        metrics = self.evaluate_prepared(prepared, part)
        self.window_predictions(prepared, part).to_csv(out / "predictions.csv", index=False)
        self.plot_window(prepared, out / "forecast.png")
        return metrics

    def artifacts(self) -> dict[str, Any]:
        return {"scaler": self.scaler.to_json(), "columns": self.columns, "season": self.season}

    @classmethod
    def from_artifacts(cls, cfg: ForecastConfig, artifacts: dict[str, Any]) -> Forecaster:
        cols = artifacts["columns"]
        model = ForecastNet(cfg, len(cols["input"]), len(cols["future"]))
        return cls(cfg, model, Scaler.from_json(artifacts["scaler"]), cols, int(artifacts["season"]))

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        if inputs.data is None:
            raise ValueError("give --data with the series to evaluate on")
        return self.evaluate(inputs.data, inputs.part)

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the series to forecast from")
        table = self.predict(inputs.data)
        if inputs.plot is not None:
            self.plot_prediction(inputs.data, table, inputs.plot)
        return table.to_csv(index=False)

    # ---- inference -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, ds: WindowDataset) -> tuple[Tensor, Tensor, Tensor]:
        x, f, y = ds.tensors()
        self.model.eval()
        dev = self.device
        preds = [self.model(x[i : i + 512].to(dev), f[i : i + 512].to(dev)).cpu() for i in range(0, len(x), 512)]
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
        self.model.eval()
        pred = self.model(x.to(self.device), f.to(self.device))[0].cpu()
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

    def plot_prediction(self, data: str | Path | pd.DataFrame, table: pd.DataFrame, picture: Path) -> Path | None:
        """The last ``3 * timestep`` observed rows of ``data`` and the forecast ``table`` after them (PNG)."""
        from ..plots import plot_forecast

        cfg = self.cfg.series
        frame = parse_times(read_table(data, encoding=self.cfg.encoding), cfg)
        frame = frame[frame[cfg.target].notna().all(axis=1)].tail(3 * cfg.timestep)
        name = cfg.target[0]
        x = frame[cfg.time_column] if cfg.time_column else range(len(frame))
        fx = table[cfg.time_column] if cfg.time_column else range(len(frame), len(frame) + len(table))
        low = high = None
        if self.cfg.quantiles:
            low, high = table[f"{name}_q{self.cfg.quantiles[0]:g}"], table[f"{name}_q{self.cfg.quantiles[-1]:g}"]
        return plot_forecast(x, frame[name], fx, table[name], low, high, picture, title=f"{name}: forecast")


class _Epochs:
    """A DataLoader whose shuffling is a function of the epoch (what exact resumption needs)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.seed = int(loader.generator.initial_seed()) if loader.generator is not None else 0

    def set_epoch(self, epoch: int) -> None:
        if self.loader.generator is not None:
            self.loader.generator.manual_seed(self.seed + epoch)
        if hasattr(self.loader.sampler, "set_epoch"):  # DistributedSampler in a distributed run
            self.loader.sampler.set_epoch(epoch)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)
