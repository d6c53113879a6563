"""The built-in demo: a forecaster on a real series, then which cells can remember (the adding problem).

Forecasting: monthly atmospheric CO2 at Mauna Loa 1958-2001 (shipped with statsmodels), five months missing
(interpolated), 12 months out with the default forecaster (a closed-form linear forecast plus an LSTM correction;
the lookback, split and training length adapt to the series), scored on the last 20% against seasonal naive and
the linear model alone; the saved model is reloaded and forecasts the year after the data ends.

Memory: each cell reads sequences of T (value, marker) pairs and must output the sum of the two marked values.
Predicting the mean scores MSE 1/6 ≈ 0.167, so a model near 0.167 has learned nothing; one near 0 remembered both
values across the gap. With the same budget of training steps, at T = 100 a vanilla tanh RNN stays at the baseline
while LSTM, GRU and minGRU solve it. Then each trained cell's memory horizon (:func:`rnnkit.inspect.memory_horizon`:
how far back the gradient of its answer reaches before falling below 1% of its peak) is printed, plotted to
``memory_horizon.png`` and written to ``memory_horizon.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from .data.synthetic import ADDING_BASELINE_MSE, adding_problem
from .inspect.horizon import Horizon, memory_horizon
from .recurrent import Recurrent


@dataclass(frozen=True)
class MemoryDemoConfig:
    """Sizes of the adding-problem comparison.

    Attributes:
        timestep: sequence length T (the gap the cells must bridge).
        hidden_size: H of every cell.
        batch_size: sequences per training step.
        lr: Adam learning rate.
        cells: the cells compared.
        steps: the training-step budget, the same for every cell (a cell that solves the task stops early).
        eval_every: steps between validation checks.
        solved_mse: a cell stops early once its validation MSE is below this.
        seed: seeds weights and data.
        horizon_examples: validation sequences the memory horizon is averaged over (0: skip it).
        out: directory for ``memory_horizon.png`` and ``memory_horizon.json`` (None: neither).
    """

    timestep: int = 100
    hidden_size: int = 32
    batch_size: int = 64
    lr: float = 1e-2
    cells: tuple[str, ...] = ("rnn_tanh", "lstm", "gru", "mingru")
    steps: int = 2000
    eval_every: int = 100
    solved_mse: float = 0.005
    seed: int = 0
    horizon_examples: int = 256
    out: str | Path | None = "runs/demo"


@dataclass
class MemoryResult:
    cell: str
    steps: int
    seconds: float
    val_mse: float
    model: nn.Module | None = field(default=None, repr=False)
    horizon: Horizon | None = field(default=None, repr=False)

    @property
    def solved(self) -> bool:
        return self.val_mse < 0.1 * ADDING_BASELINE_MSE


class _LastStepRegressor(nn.Module):
    """Recurrent layer + linear head on the output after the last timestep."""

    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def _train_one(
    cell: str, max_steps: int, cfg: MemoryDemoConfig, val: tuple[torch.Tensor, torch.Tensor], progress: Progress
) -> MemoryResult:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = _LastStepRegressor(cell, cfg.hidden_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    task = progress.add_task(f"{cell:>9}", total=max_steps, loss="", val="")
    start, val_mse, step = time.perf_counter(), float("nan"), 0
    for step in range(1, max_steps + 1):
        x, y = adding_problem(cfg.batch_size, cfg.timestep, generator=gen)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        progress.update(task, advance=1, loss=f"loss {loss.item():.4f}")
        if step % cfg.eval_every == 0 or step == max_steps:
            with torch.no_grad():
                val_mse = nn.functional.mse_loss(model(val[0]), val[1]).item()
            progress.update(task, val=f"val {val_mse:.4f}")
            if val_mse < cfg.solved_mse:
                break
    progress.update(task, total=step, completed=step)  # an early stop shows the steps it took
    return MemoryResult(cell, step, time.perf_counter() - start, val_mse, model.eval())


def run_memory_demo(cfg: MemoryDemoConfig | None = None, console: Console | None = None) -> list[MemoryResult]:
    """Train each cell on the adding problem, show progress, print the table; returns the results."""
    cfg = cfg or MemoryDemoConfig()
    console = console or Console()
    console.print(
        f"[bold]Adding problem, T = {cfg.timestep}[/]: output the sum of the two marked values. "
        f"Predicting the mean scores MSE {ADDING_BASELINE_MSE:.3f}. Every cell gets the same budget of "
        f"{cfg.steps} training steps and stops early once it has solved the task."
    )
    val = adding_problem(1000, cfg.timestep, generator=torch.Generator().manual_seed(cfg.seed + 10_000))
    from . import _ext

    with console.status("loading rnnkit's C++ kernels (compiled on the first run only, about a minute)"):
        _ext.load()  # so that minGRU's time below is training, not compiling
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[loss]}"),
        TextColumn("{task.fields[val]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        results = [_train_one(cell, cfg.steps, cfg, val, progress) for cell in cfg.cells]
    title = f"Validation MSE on the adding problem (T = {cfg.timestep}); baseline {ADDING_BASELINE_MSE:.3f}"
    table = Table(title=title)
    for col in ("cell", "steps", "seconds", "val MSE", "vs baseline", "remembered?"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r.cell,
            str(r.steps),
            f"{r.seconds:.1f}",
            f"{r.val_mse:.4f}",
            f"{r.val_mse / ADDING_BASELINE_MSE:.2f}x",
            "yes" if r.solved else "no",
        )
    console.print(table)
    if cfg.horizon_examples:
        show_horizons(results, val[0][: cfg.horizon_examples], cfg, console)
    return results


def show_horizons(results: list[MemoryResult], x: torch.Tensor, cfg: MemoryDemoConfig, console: Console) -> None:
    """Each trained cell's memory horizon on the sequences ``x``: a table, and the curves in one plot."""
    for r in results:
        r.horizon = memory_horizon(r.model, x)
    T = x.shape[1]
    table = Table(title=f"Memory horizon: how far back the answer's gradient reaches (T = {T})")
    for col in ("cell", "horizon (steps)", "gradient at lag T-1 / peak"):
        table.add_column(col, justify="right")
    for r in results:
        h = r.horizon
        tail = float(h.curve[-1] / h.curve.max()) if float(h.curve.max()) > 0 else 0.0
        table.add_row(r.cell, f"≥ {h.horizon} (all)" if h.reached_end else str(h.horizon), f"{tail:.1e}")
    console.print(table)
    console.print(
        "The horizon is the lag beyond which the gradient of the output with respect to the input stays below 1% "
        "of its peak: past it, the input hardly changes the answer."
    )
    if cfg.out is not None:
        from .inspect.figures import horizon_curves, save

        path = Path(cfg.out) / "memory_horizon.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        curves = {r.cell: r.horizon for r in results}
        save(horizon_curves(curves, f"Memory horizon after training on the adding problem (T = {T})"), path)
        numbers = path.with_suffix(".json")
        numbers.write_text(json.dumps(horizon_record(results, x, cfg), indent=1) + "\n")
        console.print(f"plot: {path}, numbers: {numbers}")


def horizon_record(results: list[MemoryResult], x: torch.Tensor, cfg: MemoryDemoConfig) -> dict:
    """What ``memory_horizon.json`` holds: the run's settings and, per cell, its training result and horizon (the
    curve relative to its peak, lag 0 first)."""
    cells = {}
    for r in results:
        h = r.horizon
        top = float(h.curve.max()) or 1.0
        cells[r.cell] = {
            "steps": r.steps,
            "val_mse": r.val_mse,
            "solved": r.solved,
            "horizon": h.horizon,
            "reached_end": h.reached_end,
            "curve_relative": [float(v) / top for v in h.curve],
        }
    settings = {k: v for k, v in asdict(cfg).items() if k != "out"}
    return {
        "task": "adding problem",
        "timestep": x.shape[1],
        "examples": x.shape[0],
        "config": settings,
        "cells": cells,
    }


DEMO_MARK = ".rnnkit-demo"


def co2_monthly() -> pd.DataFrame:  # noqa: F821
    """Monthly mean CO2 (ppm) at Mauna Loa, 1958-03 .. 2001-12, from statsmodels' bundled weekly data."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data
    monthly = weekly.resample("MS").mean()
    return monthly.rename_axis("month").reset_index()


def run_forecast_demo(out: str | Path = "runs/demo", seed: int = 0, console: Console | None = None) -> dict:
    """Train, evaluate beside seasonal naive, save, reload and forecast; returns the test metrics."""
    from .data.timeseries import SeriesConfig
    from .tasks import load
    from .tasks.forecast import ForecastConfig, Forecaster

    console = console or Console()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / DEMO_MARK).exists():
        raise ValueError(f"{out} holds files that the demo did not make; give the demo another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARK).write_text("made by 'rnnkit demo'; the next demo run replaces this directory's run\n")
    data = co2_monthly()
    csv_path = out / "co2_monthly.csv"
    data.to_csv(csv_path, index=False)
    console.print(
        f"[bold]Forecasting[/]: monthly CO2 at Mauna Loa ({len(data)} months, "
        f"{int(data['co2'].isna().sum())} missing, interpolated) -> {csv_path}"
    )
    # the default forecaster: lookback, split, batch size and training length adapt to the series
    cfg = ForecastConfig(series=SeriesConfig(target=["co2"], time_column="month", horizon=12, missing="interpolate"))
    cfg.trainer = replace(cfg.trainer, seed=seed, log_every=5)
    _, metrics = Forecaster.train(cfg, csv_path, out, overwrite=True)
    table = Table(title=f"Test forecasts, 12 months ahead ({metrics['windows']} windows)")
    for col in ("", "MAE (ppm)", "RMSE (ppm)", "sMAPE %", "MASE"):
        table.add_column(col, justify="right")
    for name, key in (("LSTM + linear", "model"), ("linear alone", "linear"), ("seasonal naive", "seasonal_naive")):
        m = metrics[key]
        table.add_row(name, f"{m['mae']:.3f}", f"{m['rmse']:.3f}", f"{m['smape']:.3f}", f"{m['mase']:.3f}")
    console.print(table)
    reloaded = load(out)
    forecast = reloaded.predict(csv_path)
    forecast.to_csv(out / "forecast_next_year.csv", index=False)
    first, last = forecast.iloc[0], forecast.iloc[-1]
    console.print(
        f"reloaded {out}/model and forecast the next year: {first['month']:%Y-%m} {first['co2']:.1f} ppm "
        f"... {last['month']:%Y-%m} {last['co2']:.1f} ppm (80% interval {last['co2_q0.1']:.1f}-"
        f"{last['co2_q0.9']:.1f}) -> {out}/forecast_next_year.csv, plot {out}/forecast.png"
    )
    return metrics
