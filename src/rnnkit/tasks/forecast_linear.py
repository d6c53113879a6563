"""The linear forecaster: DLinear-style, fitted in closed form on the training windows.

A window's target history ``x (B, T, n)`` is split into a trend (a moving average over ``kernel`` steps, ends
repeated) and the remainder; one linear map ``T -> H`` each, shared by every target and series, gives the forecast
``(B, H, n)`` (Zeng et al. 2023, "Are Transformers Effective for Time Series Forecasting?"). The forecaster feeds it
the history relative to the window's last value (as NLinear), so it follows level shifts beyond the training range.

:func:`fit_linear` solves ridge regression on the training windows for a few penalties, each as a correction of
two simple forecasts (the last value, and the last season), and keeps the one with the lowest validation MSE; the
simple forecasts themselves are candidates too, so on validation it is never worse than either.
It is the baseline scored in every forecast report and the starting point of the recurrent forecaster's linear part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: ridge penalties tried, per window and feature (the features are scaled data, about unit variance)
ALPHAS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def default_kernel(timestep: int) -> int:
    """The moving-average length: DLinear's 25, shortened (odd) for short lookbacks."""
    return max(1, min(25, (timestep // 2) | 1))


def moving_average(z: Tensor, kernel: int) -> Tensor:
    """``(..., T)`` -> ``(..., T)``: the mean over ``kernel`` steps centred on each step, ends repeated."""
    if kernel <= 1:
        return z
    lead = z.shape[:-1]
    flat = z.reshape(-1, 1, z.shape[-1])
    left, right = (kernel - 1) // 2, kernel // 2
    padded = torch.cat([flat[..., :1].expand(-1, -1, left), flat, flat[..., -1:].expand(-1, -1, right)], -1)
    return F.avg_pool1d(padded, kernel, stride=1).reshape(*lead, -1)


class LinearForecast(nn.Module):
    """``x (B, T, n)`` -> ``(B, H, n)``: one linear map of the trend and one of the remainder, per target."""

    def __init__(self, timestep: int, horizon: int, kernel: int | None = None) -> None:
        super().__init__()
        self.kernel = kernel or default_kernel(timestep)
        self.trend = nn.Linear(timestep, horizon)
        self.remainder = nn.Linear(timestep, horizon, bias=False)

    def features(self, x: Tensor) -> Tensor:
        """``(B, T, n)`` -> ``(B, n, 2T)``: the trend, then the remainder, of each target's history."""
        z = x.transpose(1, 2)  # (B, n, T)
        trend = moving_average(z, self.kernel)
        return torch.cat([trend, z - trend], -1)

    def forward(self, x: Tensor) -> Tensor:
        z = x.transpose(1, 2)  # (B, n, T)
        trend = moving_average(z, self.kernel)
        return (self.trend(trend) + self.remainder(z - trend)).transpose(1, 2)  # (B, H, n)

    @torch.no_grad()
    def set_weights(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """From a ``(2T, H)`` map of :meth:`features` and an ``(H,)`` intercept."""
        T = self.trend.in_features
        w = torch.as_tensor(weights.T, dtype=self.trend.weight.dtype)
        self.trend.weight.copy_(w[:, :T])
        self.remainder.weight.copy_(w[:, T:])
        self.trend.bias.copy_(torch.as_tensor(bias, dtype=self.trend.bias.dtype))


@dataclass
class LinearFit:
    """What :func:`fit_linear` chose: the ridge penalty, the simple forecast it corrects, and its val MSE."""

    alpha: float
    base: str
    val_mse: float | None


def _base_map(timestep: int, horizon: int, season: int, base: str) -> np.ndarray:
    """The ``(2T, H)`` map of :meth:`LinearForecast.features` that gives ``base`` from a relative history: zero
    for the last value; the value one season before each step for the last season."""
    out = np.zeros((2 * timestep, horizon))
    if base == "season":
        for h in range(horizon):
            j = timestep - season + h % season
            out[j, h] = out[timestep + j, h] = 1.0  # trend + remainder = the value itself
    return out


def _ridge(feats: np.ndarray, target: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with an unpenalised intercept: ``(weights (P, H), intercept (H,))``."""
    mu, my = feats.mean(0), target.mean(0)
    fc, tc = feats - mu, target - my
    if alpha == 0:
        weights = np.linalg.lstsq(fc, tc, rcond=None)[0]
    else:
        gram = fc.T @ fc + alpha * len(fc) * np.eye(fc.shape[1])
        weights = np.linalg.solve(gram, fc.T @ tc)
    return weights, my - mu @ weights


@torch.no_grad()
def fit_linear(
    model: LinearForecast,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None,
    season: int = 1,
    alphas: tuple[float, ...] = ALPHAS,
) -> LinearFit:
    """Fit ``model`` in closed form on the ``(x (N, T, n), y (N, H, n))`` training windows (already relative, as
    the model will see them); the penalty and the base forecast are the ones with the lowest MSE on ``val``
    (without validation windows: a mild penalty, 1e-3, on the last value). Returns what was chosen."""
    T, H = model.trend.in_features, model.trend.out_features

    def design(x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        feats = model.features(x).reshape(-1, 2 * T).double().numpy()
        return feats, y.transpose(1, 2).reshape(-1, H).double().numpy()

    f_tr, y_tr = design(*train)
    bases = ("last", "season") if 1 < season <= T else ("last",)
    if val is None or len(val[0]) == 0:
        weights, bias = _ridge(f_tr, y_tr, 1e-3)
        model.set_weights(weights, bias)
        return LinearFit(1e-3, "last", None)
    f_val, y_val = design(*val)
    best: tuple[float, np.ndarray, np.ndarray, LinearFit] | None = None
    for base in bases:
        fixed = _base_map(T, H, season, base)
        for alpha in (*alphas, math.inf):
            if alpha == math.inf:  # the simple forecast itself, when no fit beats it on validation
                weights, bias = np.zeros_like(fixed), np.zeros(H)
            else:
                weights, bias = _ridge(f_tr, y_tr - f_tr @ fixed, alpha)
            weights = weights + fixed
            mse = float(np.mean((f_val @ weights + bias - y_val) ** 2))
            if np.isfinite(mse) and (best is None or mse < best[0]):
                best = (mse, weights, bias, LinearFit(alpha, base, mse))
    assert best is not None
    model.set_weights(best[1], best[2])
    return best[3]
