"""Many series: ETTh1's seven columns as seven series in one long table, one global model vs seven separate ones.

The long table (series, date, value) is built here from the shared file and never written into the repository.
Each series is split as in the LTSF protocol (rows 0-8639 train, 8640-11519 validation, 11520-14399 test) and
scaled on its own training rows; every model is rnnkit's default forecaster (closed-form linear part + LSTM
correction, default lookback: 3 days) with the same training options, forecasting 24 hours ahead. Reported: test
MSE/MAE on the scaled data per series and over all, and wall time (training + evaluation) of each approach.

    python benchmarks/tasks/etth1_many.py     # writes benchmarks/results/etth1_many-<date>.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
from _record import environment

from rnnkit.data import data_dir
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.training.trainer import TrainerConfig

COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
SPLIT = {"train": 8640, "val": 2880, "test": 2880}


def long_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (series, date): the seven columns stacked."""
    return frame.melt(id_vars="date", value_vars=COLUMNS, var_name="series", value_name="value")


def config(horizon: int, series_id: str | None, minutes: float) -> ForecastConfig:
    cfg = ForecastConfig(
        series=SeriesConfig(target=["value"], time_column="date", series_id=series_id, horizon=horizon, **SPLIT),
        quantiles=None,
        batch_size=64,
    )
    cfg.trainer = TrainerConfig(
        epochs=None,
        max_epochs=8,
        min_steps=0,
        lr=3e-3,
        schedule="plateau",
        early_stopping=2,
        time_budget=minutes,
        checkpoint_minutes=None,
        progress=False,
    )
    return cfg


def train_and_score(cfg: ForecastConfig, data: pd.DataFrame) -> tuple[dict, dict, float]:
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        _, metrics = Forecaster.train(cfg, data, Path(tmp) / "run")
    return metrics, metrics["training"], time.perf_counter() - tic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--horizon", type=int, default=24)
    ap.add_argument("--minutes", type=float, default=6.0, help="time budget of the global model's training")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    args = ap.parse_args()
    frame = pd.read_csv(data_dir() / "ett_small" / "ETTh1.csv")
    long = long_table(frame)

    metrics, training, seconds = train_and_score(config(args.horizon, "series", args.minutes), long)
    global_row = {
        "seconds": round(seconds, 1),
        "training": training,
        "mse": metrics["model"]["mse_scaled"],
        "mae": metrics["model"]["mae_scaled"],
        "linear_mse": metrics["linear"]["mse_scaled"],
        "series": {
            k: {"mse": v["model"]["mse_scaled"], "mae": v["model"]["mae_scaled"]} for k, v in metrics["series"].items()
        },
    }
    print(f"global model: test MSE {global_row['mse']:.4f} MAE {global_row['mae']:.4f} in {seconds:.0f} s", flush=True)

    separate: dict[str, dict] = {}
    total = 0.0
    for col in COLUMNS:
        one = frame[["date", col]].rename(columns={col: "value"})
        m, training, seconds = train_and_score(config(args.horizon, None, args.minutes / len(COLUMNS)), one)
        total += seconds
        separate[col] = {
            "mse": m["model"]["mse_scaled"],
            "mae": m["model"]["mae_scaled"],
            "windows": m["windows"],
            "seconds": round(seconds, 1),
            "training": training,
        }
        print(f"  {col}: test MSE {separate[col]['mse']:.4f} in {seconds:.0f} s", flush=True)
    windows = sum(v["windows"] for v in separate.values())
    sep_mse = sum(v["mse"] * v["windows"] for v in separate.values()) / windows
    sep_mae = sum(v["mae"] * v["windows"] for v in separate.values()) / windows
    print(f"seven models: test MSE {sep_mse:.4f} MAE {sep_mae:.4f} in {total:.0f} s", flush=True)
    print(f"global / separate: MSE x{global_row['mse'] / sep_mse:.3f}, time x{global_row['seconds'] / total:.3f}")

    result = {
        "benchmark": "etth1_many",
        "protocol": f"ETTh1, 7 columns as 7 series, rows 0-8639/8640-11519/11520-14399, horizon {args.horizon}, "
        "stride-1 test windows, MSE/MAE on each series' scaled values (pooled over all windows)",
        "global": global_row,
        "separate": {"mse": sep_mse, "mae": sep_mae, "seconds": round(total, 1), "series": separate},
        "ratio_mse_global_over_separate": global_row["mse"] / sep_mse,
        "ratio_seconds_global_over_separate": global_row["seconds"] / total,
        "config": {"horizon": args.horizon, "minutes_global": args.minutes, "minutes_each": args.minutes / 7},
        "machine": environment(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"etth1_many-{date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
