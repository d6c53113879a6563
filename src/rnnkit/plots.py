"""Figures written into run directories: training curves and forecasts (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; works without a screen
import matplotlib.pyplot as plt
import numpy as np


def plot_training(metrics_csv: str | Path, out: str | Path) -> Path | None:
    """Training loss (and any validation metric ending in ``loss``) against optimizer steps."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        return None
    rows = list(csv.DictReader(metrics_csv.open()))
    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(int(r["step"]), float(r["train_loss"])) for r in rows if r.get("train_loss")]
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, label="train loss", alpha=0.8)
    for key in sorted({k for r in rows for k in r if k.startswith("val_") and k.endswith("loss")}):
        points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if points:
            ax.plot(*zip(*points), "o-", label=key.replace("_", " "))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def plot_forecast(
    history_x: np.ndarray,
    history_y: np.ndarray,
    future_x: np.ndarray,
    median: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
    out: str | Path,
    *,
    title: str = "forecast",
    actual: np.ndarray | None = None,
    interval: str = "",
) -> Path:
    """History, the point forecast, an optional prediction interval and optional actual values."""
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(history_x, history_y, color="0.3", label="history")
    ax.plot(future_x, median, color="C0", lw=2, label="forecast")
    if low is not None and high is not None:
        ax.fill_between(future_x, low, high, color="C0", alpha=0.25, label=interval or "prediction interval")
    if actual is not None:
        ax.plot(future_x, actual, color="C3", ls="--", label="actual")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
