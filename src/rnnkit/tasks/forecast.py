"""Forecasting: a linear forecast plus a recurrent correction reads ``timestep`` past steps and predicts the next
``horizon`` steps, of one series or (``--series-id``) of many series with one global model.

Metrics are computed in the data's own units (MAE, RMSE, MSE, sMAPE, MASE) and, for comparison with published
tables, as MSE/MAE on the scaled data; seasonal naive (repeat the last season) and a linear model (DLinear-style,
fitted on the same training windows) are scored beside it. With quantiles the model also gives a prediction
interval (its quantiles never cross), scored by the pinball loss and its coverage. ``backtest`` scores rolling
origins over the test part (see :mod:`.forecast_backtest`).
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.frequency import infer_offset, infer_season
from ..data.timeseries import (
    Scaler,
    SeriesConfig,
    SeriesData,
    StaticEncoder,
    WindowDataset,
    encode,
    handle_missing,
    parse_times,
    prepare_series,
    read_table,
)
from ..errors import option
from ..topologies.base import RNNConfig
from ..training import distributed as D
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from . import forecast_plots, forecast_report
from .base import Inputs, Splits, Task
from .forecast_flags import AUTO_DEFAULTS, FLAGS
from .forecast_gate import choose_point_gate
from .forecast_linear import fit_linear
from .forecast_model import LINEAR, ForecastNet

__all__ = ["ForecastConfig", "ForecastNet", "Forecaster", "infer_offset", "infer_season"]


@dataclass
class ForecastConfig:
    """Forecasting task.

    Attributes:
        series: columns, lookback (``timestep``), ``horizon``, split, scaling and missing-value policy.
        rnn: the recurrent core.
        quantiles: also predict these quantiles (a prediction interval); None for a point forecast (MSE).
        relative: feed and predict the targets relative to the last observed value of each window, so the model
            forecasts changes and can follow trends beyond the training range.
        linear: the linear part of the model (DLinear-style, fitted in closed form before training): ``frozen``
            (kept as fitted; the recurrent part learns what it misses), ``tuned`` (trained further with the
            recurrent part) or ``none`` (recurrent only).
        patch: the recurrent part reads the window in segments of this many steps, one segment (``patch`` times
            the features) per recurrent step: a long lookback in few steps (as SegRNN); 1 reads every step.
        season: seasonal period for the seasonal-naive baseline, MASE and the default lookback; None infers it
            from the time column (hourly 24, daily 7, weekly 52, monthly 12, quarterly 4; else 1).
        batch_size: windows per training step; None: 64, or fewer so that an epoch has at least 4 steps
            (at least 8 windows per step).
        encoding: text encoding of CSV input.
        trainer: optimisation options.
    """

    series: SeriesConfig = field(default_factory=lambda: SeriesConfig(target=["y"]))
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=64))
    quantiles: tuple[float, ...] | None = (0.1, 0.5, 0.9)
    relative: bool = True
    linear: str = "frozen"
    patch: int = 1
    season: int | None = None
    batch_size: int | None = None
    encoding: str = "utf-8"
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None, max_epochs=200, min_steps=500, lr=3e-3, schedule="plateau", early_stopping=10
        )
    )

    def __post_init__(self) -> None:
        if self.linear not in LINEAR:
            raise ValueError(f"ForecastConfig: {option('linear')} must be one of {list(LINEAR)}, got {self.linear!r}")
        if self.patch < 1:
            raise ValueError(f"ForecastConfig: {option('patch')} must be >= 1, got {self.patch}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"ForecastConfig: {option('batch_size')} must be >= 1, got {self.batch_size}")
        if self.season is not None and self.season < 1:
            raise ValueError(
                f"ForecastConfig: {option('season')} must be >= 1 (1: no seasonality), got {self.season}; "
                "leave it out to infer it from the time column"
            )


def auto_batch_size(windows: int) -> int:
    """64, or fewer so that an epoch over ``windows`` has at least 4 steps (but at least 8 windows per step)."""
    return max(1, min(64, max(8, math.ceil(windows / 4)), windows))


class Forecaster(Task):
    """A trained forecaster: ``evaluate`` on windows of a series, ``predict`` the horizon after its end,
    ``backtest`` rolling origins over the test part."""

    name = "forecast"
    Config = ForecastConfig
    summary = "Forecast time series: a linear forecast plus a recurrent correction, horizon steps at once, intervals."
    example = "rnnkit train forecast --data sales.csv --target sales --time-column date --horizon 12 --out runs/sales"
    outputs = ("predictions.csv", "forecast.png")
    #: what --help says for options whose default depends on the data
    auto_defaults: ClassVar[dict[str, str]] = AUTO_DEFAULTS
    flags = FLAGS

    def __init__(
        self,
        cfg: ForecastConfig,
        model: ForecastNet,
        scalers: dict[str, Scaler],
        columns: dict[str, list[str]],
        season: int,
        static: StaticEncoder | None = None,
        linear_fit: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(cfg, model)
        self.scalers, self.columns, self.season, self.static = scalers, columns, season, static
        self.linear_fit = linear_fit or {}

    @property
    def scaler(self) -> Scaler:
        """The scaler of the (first) training series."""
        return next(iter(self.scalers.values()))

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: ForecastConfig, source: Any) -> pd.DataFrame:
        return read_table(source, encoding=cfg.encoding)

    @classmethod
    def split(cls, cfg: ForecastConfig, data: pd.DataFrame, dev: Any = None, test: Any = None) -> Splits:
        """Chronological parts of each series (``series.train/val/test``); scalers are fitted on the train rows."""
        if dev is not None or test is not None:
            raise ValueError("a forecaster splits one table by time; set the parts with --train, --val and --test")
        prepared = prepare_series(data, cfg.series, encoding=cfg.encoding, season=cfg.season)
        parts = {}
        for part in ("val", "test"):
            try:
                parts[part] = prepared.windows(part)
            except ValueError:  # an empty part (--val 0)
                parts[part] = None
        return Splits(prepared.windows("train"), parts["val"], parts["test"])

    @classmethod
    def build(cls, cfg: ForecastConfig, train: WindowDataset) -> Forecaster:
        """The model for the prepared series (lookback and batch size resolved), its linear part fitted in closed
        form on the training windows."""
        prepared = train.data
        cfg = replace(cfg, series=prepared.cfg, batch_size=cfg.batch_size or auto_batch_size(len(train)))
        season = cfg.season or prepared.season
        cols = {"input": prepared.input_columns, "future": prepared.future_columns}
        model = ForecastNet(cfg, len(cols["input"]), len(cols["future"]))
        scalers = dict(zip(prepared.ids, prepared.scalers))
        task = cls(cfg, model, scalers, cols, season, prepared.static)
        if model.linear is not None:
            n = len(cfg.series.target)

            def relative(ds: WindowDataset) -> tuple[Tensor, Tensor]:
                x, _, y = ds.tensors()
                xr, base = model.relative_inputs(x)
                return xr[..., :n], y - base[:, None]

            try:
                val = relative(prepared.windows("val"))
            except ValueError:
                val = None
            fit = fit_linear(model.linear, relative(train), val, season)
            task.linear_fit = {
                "alpha": fit.alpha,
                "base": fit.base,
                "val_mse": fit.val_mse,
                "trend_penalty": fit.trend_penalty,
                "lookbacks": list(fit.lookbacks),
            }
        return task

    def loader(self, examples: WindowDataset, *, train: bool) -> Any:
        if not train:
            return DataLoader(examples, batch_size=256)
        seed = self.cfg.trainer.seed
        sampler = D.shard_sampler(examples, shuffle=True, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        size = self.cfg.batch_size or auto_batch_size(len(examples))
        loader = DataLoader(examples, batch_size=size, shuffle=sampler is None, sampler=sampler, generator=gen)
        return _Epochs(loader)

    def fit(self, train: Any, val: Any, out: Path, *, resume: bool = False) -> Any:
        """Train (see :meth:`Task.fit`) from the linear start (the closed-form linear forecast, the recurrent
        correction at zero), then keep what validation supports: how much of the correction the point forecast
        takes (:func:`.forecast_gate.choose_point_gate`), and the trained model only if its val loss is below the
        start's (else the start)."""
        model = self.model
        if val is None or model.linear is None:  # nothing to compare on, or no linear forecast to keep
            return super().fit(train, val, out, resume=resume)
        model.set_point_gate(1.0)
        start = ({k: v.detach().clone() for k, v in model.state_dict().items()}, self.score(val)["loss"])
        state = super().fit(train, val, out, resume=resume)
        kept = choose_point_gate(self, val)
        trained = self.score(val)["loss"]
        if start[1] <= trained:
            model.load_state_dict(start[0])
            kept = f"the linear start: its validation loss {start[1]:.4g} was not beaten by training ({trained:.4g})"
        self.training["kept"] = kept
        self.training["point_gate"] = float(model.point_gate)
        if D.is_main():
            self.save(out / "model")
        D.barrier()
        return state

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        x, f, y = batch
        return unwrap(model).loss(model(x, f), y)

    def report(self, out: Path, splits: Splits) -> dict[str, Any]:
        """Metrics on the test part (else val, else train) beside seasonal naive and the linear baseline; its
        predictions and a plot."""
        part = "test" if splits.test is not None else "val" if splits.val is not None else "train"
        prepared = splits.train.data
        metrics = self.evaluate_prepared(prepared, part)
        if self.linear_fit:
            metrics["linear_part"] = self.linear_fit
        self.window_predictions(prepared, part).to_csv(out / "predictions.csv", index=False)
        self.plot_window(prepared, out / "forecast.png")
        return metrics

    def artifacts(self) -> dict[str, Any]:
        return {
            "format": 2,
            "scaler": self.scaler.to_json(),
            "scalers": {k: v.to_json() for k, v in self.scalers.items()},
            "columns": self.columns,
            "season": self.season,
            "static": self.static.to_json() if self.static else None,
            "linear_fit": self.linear_fit,
        }

    @classmethod
    def from_artifacts(cls, cfg: ForecastConfig, artifacts: dict[str, Any]) -> Forecaster:
        cols = artifacts["columns"]
        legacy = artifacts.get("format", 1) < 2  # saved before the linear part and the ordered quantiles
        if legacy:
            cfg = replace(cfg, linear="none")
        model = ForecastNet(cfg, len(cols["input"]), len(cols["future"]))
        if legacy:
            model.median = None
        scalers = {k: Scaler.from_json(v) for k, v in artifacts.get("scalers", {"": artifacts["scaler"]}).items()}
        static = StaticEncoder.from_json(artifacts["static"]) if artifacts.get("static") else None
        return cls(cfg, model, scalers, cols, int(artifacts["season"]), static, artifacts.get("linear_fit"))

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        if inputs.data is None:
            raise ValueError("give --data with the series to evaluate on")
        if inputs.backtest is not None:  # 0 too: backtest() says what it expects, rather than a plain evaluation
            from .forecast_backtest import backtest_inputs

            return backtest_inputs(self, inputs)
        if inputs.retrain:
            raise ValueError(
                f"{option('retrain')} refits the model at each backtest origin; give {option('backtest')} K too"
            )
        return self.evaluate(inputs.data, inputs.part)

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the series to forecast from")
        with warnings.catch_warnings(record=True) as caught:  # a skipped series: one line on stderr, no traceback
            warnings.simplefilter("always", UserWarning)
            table = self.predict(inputs.data)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        if inputs.plot is not None:
            self.plot_prediction(inputs.data, table, inputs.plot)
        return table.to_csv(index=False)

    # ---- evaluation ------------------------------------------------------------------------------------------
    def prepare(self, data: str | Path | pd.DataFrame) -> SeriesData:
        """``data`` prepared as in training: the saved scalers (a new series gets one fitted on its train rows)."""
        return prepare_series(
            data,
            self.cfg.series,
            scaler=self.scalers,
            encoding=self.cfg.encoding,
            season=self.season,
            static=self.static,
        )

    def evaluate(self, data: str | Path | pd.DataFrame, part: str = "all") -> dict[str, Any]:
        """Metrics on every window of ``data`` (``part="all"``) or on its train/val/test part, beside seasonal
        naive and the linear baseline (fitted on ``data``'s training windows)."""
        return self.evaluate_prepared(self.prepare(data), part)

    def evaluate_prepared(self, prepared: SeriesData, part: str) -> dict[str, Any]:
        return forecast_report.score(self, prepared, part)

    def window_predictions(self, prepared: SeriesData, part: str) -> pd.DataFrame:
        """One row per window and horizon step of ``part`` (see :func:`forecast_report.window_table`)."""
        return forecast_report.window_table(self, prepared, part)

    def backtest(self, data: str | Path | pd.DataFrame, origins: int, *, retrain: bool = False) -> pd.DataFrame:
        """Forecasts from ``origins`` rolling origins over the test part of each series (see
        :func:`rnnkit.tasks.forecast_backtest.backtest`)."""
        from .forecast_backtest import backtest

        return backtest(self, data, origins, retrain=retrain)

    def _unscale(self, values: Tensor, series: str | None = None) -> np.ndarray:
        """``(B, steps, n[, Q])`` scaled targets of one series (the first by default) -> data units."""
        scaler = self.scalers[series] if series is not None else self.scaler
        targets = self.cfg.series.target
        idx = [scaler.columns.index(c) for c in targets]
        shift, scale = np.asarray(scaler.shift)[idx][None], np.asarray(scaler.scale)[idx][None]
        B = values.shape[0]
        return forecast_report.unscale(values, np.repeat(shift, B, 0), np.repeat(scale, B, 0))

    # ---- forecasting after the data ------------------------------------------------------------------------
    def window_inputs(
        self, history: pd.DataFrame, future: pd.DataFrame, series: str = ""
    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, Scaler]:
        """The model inputs of one forecast: the last ``timestep`` rows of ``history`` (filled from those rows
        only) and the ``horizon`` rows after them (known-future covariates; timestamps extended if missing).
        Returns ``(x (T, F), f (H, F_f), future rows, scaler)``; a series unseen in training is scaled by its
        history."""
        cfg = self.cfg.series
        T = cfg.timestep
        numeric = list(dict.fromkeys([*cfg.target, *cfg.past_covariates, *cfg.future_covariates]))
        scaler = self.scalers.get(series)
        if scaler is None:
            scaler = Scaler.fit(cfg.scaler, handle_missing(history, numeric, cfg.missing)[numeric])
        future = self._extend_future(history, future)
        past = handle_missing(history.iloc[-T:].reset_index(drop=True), numeric, cfg.missing)
        window = pd.concat([past, future], ignore_index=True)
        static = self.static.transform(history[cfg.static].bfill().iloc[0]) if self.static else None
        table, input_cols, future_cols = encode(window, cfg, scaler, static, self.static.names if self.static else None)
        f_idx = [input_cols.index(c) for c in future_cols]
        return table[:T], table[T:, f_idx], future, scaler

    @torch.no_grad()
    def predict(self, data: str | Path | pd.DataFrame) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after the last row with a target value (of each series).

        Rows after that (target empty) supply the known-future covariates for the forecast steps; calendar
        features and timestamps are extended from the time column's frequency. Returns one row per (series and)
        future step with the point forecast and, with quantiles, a column per quantile (``<target>_q0.1`` ...).
        """
        from ..data.panel import split_series

        cfg = self.cfg.series
        frame = parse_times(read_table(data, encoding=self.cfg.encoding), cfg)
        xs, fs, futures, scalers, names = [], [], [], [], []
        skipped: dict[str, str] = {}
        for name, part in split_series(frame, cfg):
            part = part.reset_index(drop=True)
            known = part[cfg.target].notna().all(axis=1).to_numpy()
            where = f" of series {name!r}" if name else ""
            last = int(np.flatnonzero(known)[-1]) if known.any() else -1
            history, future = part.iloc[: last + 1], part.iloc[last + 1 : last + 1 + cfg.horizon]
            if len(history) < cfg.timestep:
                why = (
                    f"predict needs at least {cfg.timestep} rows of history{where} (the model's lookback, "
                    f"{option('timestep')}), got {len(history)} with target values"
                )
                if not known.any():
                    why = f"no row{where} has values for the target(s) {cfg.target}"
                if not cfg.series_id:
                    raise ValueError(why)
                skipped[name] = why  # one short series among many: the others are still forecast
                continue
            missing_future = len(future) < cfg.horizon or future[cfg.future_covariates].isna().any().any()
            if cfg.future_covariates and missing_future:
                raise ValueError(
                    f"the model uses known-future covariates {cfg.future_covariates}: add {cfg.horizon} rows "
                    f"after the last target value{where} with those columns filled (and the target empty)"
                )
            x, f, fut, scaler = self.window_inputs(history, future, name)
            xs.append(x), fs.append(f), futures.append(fut), scalers.append(scaler), names.append(name)
        if not xs:
            raise ValueError(f"no series has enough history to forecast; {next(iter(skipped.values()))}")
        for why in skipped.values():
            warnings.warn(f"skipped: {why}", UserWarning, stacklevel=2)
        self.model.eval()
        x = torch.as_tensor(np.stack(xs), dtype=torch.float32)
        f = torch.as_tensor(np.stack(fs), dtype=torch.float32)
        pred = self.model(x.to(self.device), f.to(self.device)).cpu()
        shift = np.asarray([[s.shift[s.columns.index(c)] for c in cfg.target] for s in scalers])
        scale = np.asarray([[s.scale[s.columns.index(c)] for c in cfg.target] for s in scalers])
        point = forecast_report.unscale(self.model.point(pred), shift, scale)
        q = forecast_report.unscale(pred, shift, scale) if self.cfg.quantiles else None
        tables = []
        for b, (name, fut) in enumerate(zip(names, futures)):
            out = pd.DataFrame()
            if cfg.series_id:
                out[cfg.series_id] = [name] * cfg.horizon
            if cfg.time_column:
                out[cfg.time_column] = fut[cfg.time_column].to_numpy()
            for j, target in enumerate(cfg.target):
                out[target] = point[b, :, j]
            for j, target in enumerate(cfg.target):
                for k, level in enumerate(self.cfg.quantiles or ()):
                    out[f"{target}_q{level:g}"] = q[b, :, j, k]  # type: ignore[index]
            tables.append(out)
        table = pd.concat(tables, ignore_index=True)
        if skipped:
            table.attrs["skipped_series"] = skipped
        return table

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

    # ---- pictures --------------------------------------------------------------------------------------------
    def plot_window(self, prepared: SeriesData, path: Path, part: str = "test") -> Path | None:
        """The last window of ``part`` (or of the series): history, forecast, interval and the actual values."""
        return forecast_plots.plot_window(self, prepared, path, part)

    def plot_prediction(self, data: str | Path | pd.DataFrame, table: pd.DataFrame, picture: Path) -> Path | None:
        """The last ``3 * timestep`` observed rows of ``data`` and the forecast ``table`` after them (PNG)."""
        frame = parse_times(read_table(data, encoding=self.cfg.encoding), self.cfg.series)
        return forecast_plots.plot_prediction(self, frame, table, picture)


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
