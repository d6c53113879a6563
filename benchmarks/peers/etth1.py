"""Time to accuracy on ETTh1 against the peers: Darts BlockRNNModel, NeuralForecast LSTM, rnnkit's forecaster.

Same task for all: ETTh1 OT (univariate), split rows 0-8639 / 8640-11519 / 11520-14399, an LSTM with 64 hidden
units reading a lookback of 96 hours and forecasting 24, batch 32, scaled with the training rows' mean and std.
Each is scored on the same 2,857 stride-1 windows whose 24 targets lie in the test rows, by MSE in the data's units
(degrees), and timed (wall clock) for fitting and for predicting those windows. Each library runs at a few training
lengths, so the result is a curve of MSE against seconds; a library's "best" is its lowest MSE among them.

Runs in the peers' own virtualenv (``make peers``: torch pinned to rnnkit's), never in rnnkit's:

    .venv-peers/bin/python benchmarks/peers/etth1.py    # writes benchmarks/results/peers-etth1-<date>.json/.png
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import torch

LOOKBACK, HORIZON, HIDDEN, BATCH = 96, 24, 64, 32
TRAIN, VAL, TEST = 8640, 11520, 14400


def data() -> pd.DataFrame:
    root = Path(os.environ.get("RNNKIT_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    frame = pd.read_csv(root / "ett_small" / "ETTh1.csv", usecols=["date", "OT"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.iloc[:TEST].reset_index(drop=True)


def truth(frame: pd.DataFrame) -> np.ndarray:
    """``(2857, 24)``: the targets of every stride-1 window inside the test rows."""
    y = frame["OT"].to_numpy(np.float64)
    starts = np.arange(VAL, TEST - HORIZON + 1)
    return y[starts[:, None] + np.arange(HORIZON)]


# ---- rnnkit -------------------------------------------------------------------------------------------------------
def rnnkit_run(frame: pd.DataFrame, epochs: int) -> tuple[np.ndarray, float, float, dict]:
    """The default forecaster (a closed-form linear start plus an LSTM correction) at these sizes; the extra dict
    says what validation kept: the linear start (the LSTM correction at zero) or the trained model, and the share of
    the LSTM correction the point forecast takes (``point_gate``)."""
    from rnnkit.data.timeseries import SeriesConfig
    from rnnkit.tasks.forecast import ForecastConfig, Forecaster
    from rnnkit.topologies.base import RNNConfig
    from rnnkit.training.trainer import TrainerConfig

    split = {"train": TRAIN, "val": VAL - TRAIN, "test": TEST - VAL}
    cfg = ForecastConfig(
        series=SeriesConfig(target=["OT"], time_column="date", timestep=LOOKBACK, horizon=HORIZON, **split),
        rnn=RNNConfig(cell="lstm", hidden_size=HIDDEN),
        quantiles=None,
        batch_size=BATCH,
        trainer=TrainerConfig(epochs=epochs, lr=1e-3, checkpoint_minutes=None, progress=False),
    )
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        task, metrics = Forecaster.train(cfg, frame, Path(tmp) / "run")
        fit = time.perf_counter() - tic
        tic = time.perf_counter()
        table = task.window_predictions(task.prepare(frame), "test")
    pred = table["OT"].to_numpy().reshape(-1, HORIZON)
    training = metrics["training"]
    kept, gate = training.get("kept"), training.get("point_gate", 1.0)
    lstm = gate > 0 and not (kept or "").startswith("the linear start")  # the LSTM shapes the forecast
    return pred, fit, time.perf_counter() - tic, {"kept": kept, "point_gate": gate, "lstm_in_forecast": lstm}


# ---- Darts --------------------------------------------------------------------------------------------------------
def darts_run(frame: pd.DataFrame, epochs: int) -> tuple[np.ndarray, float, float]:
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import BlockRNNModel

    series = TimeSeries.from_dataframe(frame, "date", "OT").astype(np.float32)
    scaler = Scaler()
    scaler.fit(series[:TRAIN])
    scaled = scaler.transform(series)
    model = BlockRNNModel(
        model="LSTM",
        input_chunk_length=LOOKBACK,
        output_chunk_length=HORIZON,
        hidden_dim=HIDDEN,
        n_rnn_layers=1,
        batch_size=BATCH,
        n_epochs=epochs,
        random_state=0,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    tic = time.perf_counter()
    model.fit(scaled[:TRAIN], val_series=scaled[TRAIN - LOOKBACK : VAL], verbose=False)
    fit = time.perf_counter() - tic
    tic = time.perf_counter()
    forecasts = model.historical_forecasts(
        scaled[:TEST],
        start=scaled.time_index[VAL],
        forecast_horizon=HORIZON,
        stride=1,
        retrain=False,
        last_points_only=False,
        verbose=False,
    )
    pred = np.stack([scaler.inverse_transform(f).values()[:, 0] for f in forecasts])
    return pred[: TEST - VAL - HORIZON + 1], fit, time.perf_counter() - tic


# ---- NeuralForecast -------------------------------------------------------------------------------------------------
def neuralforecast_run(frame: pd.DataFrame, steps: int) -> tuple[np.ndarray, float, float]:
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    df = pd.DataFrame({"unique_id": "OT", "ds": frame["date"], "y": frame["OT"].astype(np.float32)})
    model = LSTM(
        h=HORIZON,
        input_size=LOOKBACK,
        encoder_hidden_size=HIDDEN,
        encoder_n_layers=1,
        batch_size=BATCH,
        max_steps=steps,
        scaler_type="standard",
        random_seed=0,
        accelerator="cpu",
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
    )
    nf = NeuralForecast(models=[model], freq="h")
    tic = time.perf_counter()
    nf.fit(df.iloc[:VAL], val_size=VAL - TRAIN)
    fit = time.perf_counter() - tic
    tic = time.perf_counter()
    n = TEST - VAL - HORIZON + 1
    cv = nf.cross_validation(df, n_windows=n, step_size=1, refit=False, val_size=0, test_size=None)
    pred = cv.sort_values(["cutoff", "ds"])["LSTM"].to_numpy().reshape(n, HORIZON)
    return pred, fit, time.perf_counter() - tic


CONTENDERS: dict[str, tuple[Callable, str, list[int]]] = {
    "rnnkit": (rnnkit_run, "epochs", [1, 2, 3, 4]),
    "darts": (darts_run, "epochs", [1, 3, 10]),
    "neuralforecast": (neuralforecast_run, "steps", [200, 800, 2500]),
}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in CONTENDERS:
        mine = sorted((r for r in rows if r["library"] == name and "mse" in r), key=lambda r: r["seconds"])
        if mine:
            ax.plot([r["seconds"] for r in mine], [r["mse"] for r in mine], "o-", label=name)
            for r in mine:
                ax.annotate(f"{r['length']} {r['unit']}", (r["seconds"], r["mse"]), fontsize=7, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("seconds: fit + predict 2,857 windows (2 CPU cores)")
    ax.set_ylabel("test MSE (degrees², data units)")
    ax.set_title(f"ETTh1 OT, LSTM H={HIDDEN}, lookback {LOOKBACK}, horizon {HORIZON}, batch {BATCH}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=list(CONTENDERS))
    ap.add_argument(
        "--lengths", nargs="*", default=[], help="training lengths per library, e.g. darts=1,3 neuralforecast=200,800"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for every library (1: on a shared 2-core machine two threads spin against other work)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # the same for all three: they share this process's torch
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    torch.manual_seed(0)
    frame = data()
    y = truth(frame)
    rows = []
    chosen = {k: [int(v) for v in vs.split(",")] for k, vs in (kv.split("=", 1) for kv in args.lengths)}
    for name in args.only:
        fn, unit, lengths = CONTENDERS[name]
        lengths = chosen.get(name, lengths)
        for length in lengths:
            row = {"library": name, "length": length, "unit": unit}
            try:
                pred, fit, predict, *extra = fn(frame, length)
            except Exception as exc:  # a peer that cannot run here is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                print(f"{name} {length} {unit}: {row['error']}", flush=True)
                rows.append(row)
                break
            assert pred.shape == y.shape, (name, pred.shape, y.shape)
            row |= {"mse": float(np.mean((pred - y) ** 2)), "fit_seconds": round(fit, 1)}
            row |= {"predict_seconds": round(predict, 1), "seconds": round(fit + predict, 1), "windows": len(y)}
            row |= extra[0] if extra else {}
            print(f"{name:15s} {length:5d} {unit:6s} MSE {row['mse']:.3f}  fit {fit:.0f} s + predict {predict:.0f} s")
            rows.append(row)
    summary = {}
    ours = [r for r in rows if r["library"] == "rnnkit" and "mse" in r]
    for name in CONTENDERS:
        mine = [r for r in rows if r["library"] == name and "mse" in r]
        if name == "rnnkit" or not mine or not ours:
            continue
        best = min(mine, key=lambda r: r["mse"])
        reach = [r for r in ours if r["mse"] <= best["mse"]]
        fastest = min(reach, key=lambda r: r["seconds"]) if reach else None
        # the same, counting only fits whose forecast takes (some of) the trained LSTM correction
        recurrent = [r for r in reach if r.get("lstm_in_forecast")]
        fastest_rnn = min(recurrent, key=lambda r: r["seconds"]) if recurrent else None
        summary[name] = {
            "peer_best_mse": best["mse"],
            "peer_seconds_to_best": best["seconds"],
            "rnnkit_seconds_to_that_mse": fastest["seconds"] if fastest else None,
            "ratio": fastest["seconds"] / best["seconds"] if fastest else None,
            "ratio_with_the_lstm_correction_kept": fastest_rnn["seconds"] / best["seconds"] if fastest_rnn else None,
        }
        ratio = f"{summary[name]['ratio']:.3f}" if fastest else "not reached"
        rnn = summary[name]["ratio_with_the_lstm_correction_kept"]
        print(
            f"{name}: best MSE {best['mse']:.3f} in {best['seconds']:.0f} s; rnnkit reaches it in ratio {ratio} "
            f"({'not reached' if rnn is None else f'{rnn:.3f}'} counting only fits whose forecast uses the LSTM)"
        )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    versions = {}
    for mod in ("darts", "neuralforecast", "rnnkit"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # not installed here
            versions[mod] = None
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"peers-etth1-{date.today().isoformat()}"
    result = {
        "benchmark": "peers-etth1",
        "protocol": f"ETTh1 OT, rows 0-{TRAIN - 1}/{TRAIN}-{VAL - 1}/{VAL}-{TEST - 1}, LSTM H={HIDDEN}, lookback "
        f"{LOOKBACK}, horizon {HORIZON}, batch {BATCH}; MSE in degrees over the {len(y)} stride-1 test windows",
        "results": rows,
        "time_to_peer_best": summary,
        "machine": {
            "rnnkit_commit": commit.stdout.strip(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "versions": versions,
        },
    }
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, stem.with_suffix(".png"))
    print(f"wrote {stem}.json and {stem}.png")


if __name__ == "__main__":
    main()
