"""The default forecaster against seasonal naive on real and synthetic series it was never tuned on.

Every series is trained with the defaults alone (only the target, the time column, the horizon and, for CO2's five
missing months, ``--missing interpolate`` are given: lookback, split, batch size and training length adapt to the
series) and scored on its test part (the last 20% of rows, at least one horizon) by MAE in the data's units, beside
seasonal naive and the linear model alone. Real series: CO2 at Mauna Loa (the demo), airline passengers, monthly
sunspots, Melbourne daily minimum temperatures; synthetic ones are drawn from a seed given on the command line.

    python benchmarks/tasks/forecast_series.py [--seed 7]   # writes benchmarks/results/forecast_series-<date>.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _record import environment

from rnnkit.data import data_dir
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.demo import co2_monthly
from rnnkit.tasks.forecast import ForecastConfig, Forecaster


def real() -> list[tuple[str, pd.DataFrame, str, str, int]]:
    d = data_dir()
    return [
        ("co2 (demo)", co2_monthly(), "co2", "month", 12),
        ("airline passengers", pd.read_csv(d / "airline_passengers/airline-passengers.csv"), "Passengers", "Month", 12),
        ("monthly sunspots", pd.read_csv(d / "monthly_sunspots/monthly-sunspots.csv"), "Sunspots", "Month", 12),
        (
            "daily min temperatures",
            pd.read_csv(d / "daily_min_temperatures/daily-min-temperatures.csv"),
            "Temp",
            "Date",
            7,
        ),
    ]


def synthetic(seed: int) -> list[tuple[str, pd.DataFrame, str, str | None, int]]:
    """Shapes a user might bring: short trend + season, multiplicative growth, a level shift, a random walk."""
    rng = np.random.default_rng(seed)
    out = []
    n = int(rng.integers(96, 132))
    t = np.arange(n)
    y = (
        rng.uniform(20, 80)
        + rng.uniform(0.1, 1) * t
        + rng.uniform(3, 10) * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6))
    )
    out.append((f"trend+season, {n} months", y + rng.normal(0, 1.5, n), "MS", 12))
    n = 180
    t = np.arange(n)
    y = 100 * np.exp(rng.uniform(0.005, 0.015) * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 6)))
    out.append(("multiplicative growth, 180 months", y * np.exp(rng.normal(0, 0.03, n)), "MS", 6))
    n = 400
    t = np.arange(n)
    shift = np.where(t > rng.integers(200, 300), rng.uniform(10, 30), 0)
    y = 100 + 10 * np.sin(2 * np.pi * t / 7) + shift + np.cumsum(rng.normal(0, 0.8, n))
    out.append(("weekly season + level shift, 400 days", y, "D", 14))
    n = 2000
    t = np.arange(n)
    y = np.cumsum(rng.normal(0, 0.3, n)) + 3 * np.sin(2 * np.pi * t / 24) + 1.5 * np.cos(2 * np.pi * t / 12)
    out.append(("random walk + daily season, 2000 hours", y, "h", 24))
    frames = []
    for name, values, freq, horizon in out:
        frame = pd.DataFrame({"time": pd.date_range("2010-01-01", periods=len(values), freq=freq), "y": values})
        frames.append((name, frame, "y", "time", horizon))
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7, help="draws the synthetic series (and seeds training)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    args = ap.parse_args()
    torch.set_num_threads(1)  # small models: a second thread only waits (and spins) on a busy machine
    rows = []
    for name, frame, target, time_column, horizon in real() + synthetic(args.seed):
        series = SeriesConfig(target=[target], time_column=time_column, horizon=horizon, missing="interpolate")
        cfg = ForecastConfig(series=series)
        cfg.trainer.progress = False
        cfg.trainer.seed = args.seed
        tic = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            task, metrics = Forecaster.train(cfg, frame, Path(tmp) / "run")
        mae = {k: metrics[k]["mae"] for k in ("model", "seasonal_naive", "linear")}
        row = {
            "series": name,
            "rows": len(frame),
            "horizon": horizon,
            "lookback": task.cfg.series.timestep,
            "season": metrics["season"],
            "test_windows": metrics["windows"],
            "mae": mae,
            "ratio_to_seasonal_naive": mae["model"] / mae["seasonal_naive"],
            "beats_seasonal_naive": mae["model"] < mae["seasonal_naive"],
            "interval_coverage": metrics["model"].get("interval_coverage"),
            "seconds": round(time.perf_counter() - tic, 1),
            "training": metrics["training"],
        }
        rows.append(row)
        print(
            f"{name:40s} lookback {row['lookback']:3d}  test MAE {mae['model']:9.3f}  seasonal naive "
            f"{mae['seasonal_naive']:9.3f}  linear {mae['linear']:9.3f}  ratio {row['ratio_to_seasonal_naive']:.3f}  "
            f"{row['seconds']:.0f} s",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"forecast_series-{date.today().isoformat()}.json"
    result = {
        "benchmark": "forecast_series",
        "protocol": "default forecaster, test part (last 20% of rows, at least one horizon), MAE in data units",
        "seed": args.seed,
        "results": rows,
        "machine": environment(),
    }
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
