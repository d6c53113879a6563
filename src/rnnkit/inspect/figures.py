"""The inspector's figures (matplotlib, no display needed): heatmap, top units, saturation, horizon, attention.

Each function draws onto a new figure and returns it; :func:`save` writes a PNG file or returns PNG bytes for the
HTML report.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; works without a screen
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .horizon import Horizon
from .saturation import Saturation


def save(fig: Figure, path: str | Path | None = None, dpi: int = 100) -> bytes:
    """PNG bytes of ``fig`` (also written to ``path`` if given); the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def _time_ticks(ax: plt.Axes, labels: Sequence[str]) -> None:
    """The input along the time axis: every label when they fit, else every k-th."""
    T = len(labels)
    max_ticks = 150 if max(map(len, labels), default=1) <= 1 else 60  # single characters fit closer
    step = max(1, -(-T // max_ticks))
    ticks = list(range(0, T, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[t] for t in ticks], rotation=90 if max(map(len, labels), default=1) > 1 else 0)
    ax.tick_params(axis="x", labelsize=7 if T > 30 else 9)


def heatmap(values: np.ndarray, labels: Sequence[str], title: str, ylabel: str = "unit") -> Figure:
    """Units × time heatmap of ``values (T, U)`` with the input ``labels`` along time."""
    T, U = values.shape
    fig, ax = plt.subplots(figsize=(min(16, 3 + 0.18 * T), min(10, 2 + 0.05 * U + 1.5)))
    limit = float(np.abs(values).max()) or 1.0
    im = ax.imshow(values.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _time_ticks(ax, labels)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.tight_layout()
    return fig


def unit_lines(values: np.ndarray, units: Sequence[int], labels: Sequence[str], title: str) -> Figure:
    """The chosen units' activations over time, one line each; ``values (T, U)``."""
    fig, ax = plt.subplots(figsize=(min(16, 3 + 0.18 * len(labels)), 3.6))
    for u in units:
        ax.plot(values[:, u], lw=1.5, label=f"unit {u}")
    ax.set_title(title)
    ax.set_ylabel("activation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(units), 6), loc="upper left")
    _time_ticks(ax, labels)
    fig.tight_layout()
    return fig


def saturation_scatter(sat: Saturation, title: str) -> Figure:
    """Each gate unit as a point: fraction of steps left-saturated (x) against right-saturated (y)."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for k, name in enumerate(sat.left):
        ax.scatter(sat.left[name].flatten(), sat.right[name].flatten(), s=14, alpha=0.6, color=f"C{k}", label=name)
    ax.plot([0, 1], [1, 0], color="0.7", lw=0.8)  # a unit cannot lie above this line
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"fraction of steps left-saturated (< {sat.low:g})")
    ax.set_ylabel(f"fraction of steps right-saturated (> {sat.high:g})")
    ax.set_title(title)
    ax.legend(title="gate")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def horizon_curves(curves: Mapping[str, Horizon], title: str, unit: str = "steps") -> Figure:
    """Memory-horizon curves, each divided by its maximum, on a log scale; the threshold and each horizon. ``unit``:
    what one lag is (``steps``, ``patches of 4 steps``)."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    threshold = 0.01
    for k, (name, h) in enumerate(curves.items()):
        curve = h.curve.numpy()
        top = curve.max() if len(curve) and curve.max() > 0 else 1.0
        mark = "≥ " if h.reached_end else ""
        ax.plot(
            np.arange(len(curve)),
            np.maximum(curve / top, 1e-12),
            color=f"C{k}",
            lw=1.6,
            label=f"{name}: horizon {mark}{h.horizon}",
        )
        ax.axvline(h.horizon, color=f"C{k}", ls=":", lw=1)
        threshold = h.threshold
    ax.axhline(threshold, color="0.4", ls="--", lw=1, label=f"{threshold:.0%} of the maximum")
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-6, ax.get_ylim()[0]))
    ax.set_xlabel(f"lag T - t ({unit} back from the output)")
    ax.set_ylabel("|d output_T / d input_t| (relative)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def attention_map(weights: np.ndarray, source: Sequence[str], target: Sequence[str], title: str) -> Figure:
    """Target steps (rows) × source positions (columns) attention weights."""
    T, S = weights.shape
    fig, ax = plt.subplots(figsize=(min(14, 2.5 + 0.42 * S), min(12, 2 + 0.36 * T)))
    im = ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(S))
    ax.set_xticklabels(source, rotation=90)
    ax.set_yticks(range(T))
    ax.set_yticklabels(target)
    ax.set_xlabel("source")
    ax.set_ylabel("target (the model's translation)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig
