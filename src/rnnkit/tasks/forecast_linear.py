"""The linear forecaster: DLinear-style, fitted in closed form on the training windows.

A window's target history ``x (B, T, n)`` is split into a trend (a moving average over ``kernel`` steps, ends
repeated) and the remainder; one linear map ``T -> H`` each, shared by every target and series, gives the forecast
``(B, H, n)`` (Zeng et al. 2023, "Are Transformers Effective for Time Series Forecasting?"). The forecaster feeds it
the history relative to the window's last value (as NLinear), so it follows level shifts beyond the training range.

:func:`fit_linear` solves ridge regression on the training windows for a few penalties, each as a correction of
two simple forecasts (the last value, and the last season), and keeps the one with the lowest validation MSE; the
simple forecasts themselves are candidates too, so on validation it is never worse than either. When the val part
is long enough to tell (:data:`MIN_BLOCKS`), a finer grid of penalties and two more candidates: a heavier penalty
on the trend block, and the average with the fits on the last 70% and 50% of the lookback (stored as one linear
map of the full history).
It is the baseline scored in every forecast report and the starting point of the recurrent forecaster's linear part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: ridge penalties tried, per window and feature (the features are scaled data, about unit variance)
ALPHAS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
#: the finer grid's extra penalties, tried when the val part is long enough to tell (:data:`MIN_BLOCKS`)
FINE_ALPHAS = (3e-3, 3e-2, 0.3, 3.0)
#: the trend block's penalty, as a multiple of the remainder's: a smooth history's slow part extrapolates least
#: reliably (on ETTh1's validation windows 10-100x was chosen at every horizon, lowering the MSE by 0.5-1.5%)
TREND_PENALTIES = (1.0, 10.0, 100.0)
#: shorter lookbacks (fractions of the model's) also fitted; their forecasts are averaged if that lowers val MSE
LOOKBACK_FRACTIONS = (0.7, 0.5)
#: a heavier trend penalty or the average replaces the plain fit only when the val part holds this many stretches
#: of ``horizon`` windows (neighbouring windows share targets): on short series, choosing among more fits by val
#: MSE alone lost accuracy on fresh synthetic series (test MSE +1-7%), while on ETTh1 (3-29 stretches) it helped
MIN_BLOCKS = 10


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
    """What :func:`fit_linear` chose: the ridge penalty, the extra penalty on the trend block (a multiple of
    ``alpha``), the simple forecast it corrects, its val MSE, and the lookbacks whose fits were averaged (the
    model's own alone when averaging did not lower the val MSE). With several lookbacks, ``alpha``,
    ``trend_penalty`` and ``base`` are those of the full lookback's fit."""

    alpha: float
    base: str
    val_mse: float | None
    trend_penalty: float = 1.0
    lookbacks: tuple[int, ...] = ()


def _base_map(timestep: int, horizon: int, season: int, base: str) -> np.ndarray:
    """The ``(2T, H)`` map of :meth:`LinearForecast.features` that gives ``base`` from a relative history: zero
    for the last value; the value one season before each step for the last season."""
    out = np.zeros((2 * timestep, horizon))
    if base == "season":
        for h in range(horizon):
            j = timestep - season + h % season
            out[j, h] = out[timestep + j, h] = 1.0  # trend + remainder = the value itself
    return out


class _RidgePath:
    """Least squares with an unpenalised intercept for many penalties from one eigendecomposition of the centred
    Gram matrix (``feats (N, P)``, ``target (N, H)``); a zero penalty gives the minimum-norm solution."""

    def __init__(self, feats: np.ndarray, target: np.ndarray) -> None:
        self.mu, self.my, self.n = feats.mean(0), target.mean(0), len(feats)
        fc = feats - self.mu
        self.s, self.v = np.linalg.eigh(fc.T @ fc)
        self.b = self.v.T @ (fc.T @ (target - self.my))

    def solve(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """``(weights (P, H), intercept (H,))`` for the penalty ``alpha`` per window and feature."""
        s = np.maximum(self.s, 0.0)
        if alpha == 0:  # the pseudo-inverse: directions the data do not span get no weight
            keep = s > s.max(initial=0.0) * s.size * np.finfo(float).eps
            inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
        else:
            inv = 1.0 / (s + alpha * self.n)
        weights = self.v @ (inv[:, None] * self.b)
        return weights, self.my - self.mu @ weights


def _history_map(weights: np.ndarray, timestep: int, kernel: int) -> np.ndarray:
    """A ``(2T, H)`` map of the features (trend, remainder) as the ``(T, H)`` map of the history it amounts to."""
    trend = moving_average(torch.eye(timestep, dtype=torch.float64), kernel).numpy()  # row i: the trend of e_i
    return trend @ weights[:timestep] + (np.eye(timestep) - trend) @ weights[timestep:]


def _features(x: np.ndarray, kernel: int) -> np.ndarray:
    """``(N, T)`` relative histories -> ``(N, 2T)``: trend, then remainder (as :meth:`LinearForecast.features`)."""
    trend = moving_average(torch.from_numpy(x), kernel).numpy()
    return np.concatenate([trend, x - trend], 1)


def _clearly_lower(err: np.ndarray, ref: np.ndarray, block: int) -> bool:
    """Whether the per-window val errors ``err (M,)`` are lower on average than ``ref (M,)``, with at least
    :data:`MIN_BLOCKS` runs of ``block`` windows to tell (too few: the simpler fit stays)."""
    return len(err) >= MIN_BLOCKS * max(block, 1) and float(err.mean()) < float(ref.mean())


def _fit_one(
    x: tuple[np.ndarray, np.ndarray],
    y: tuple[np.ndarray, np.ndarray],
    horizon: int,
    season: int,
    kernel: int,
    block: int,
    alphas: tuple[float, ...],
    trend_penalties: tuple[float, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LinearFit]:
    """The best ridge fit on relative histories ``x = (train (N, T), val (M, T))`` for ``y`` ``(N|M, H)``:
    ``(val MSE per window (M,), (T, H) map of the history, (H,) intercept, what was chosen)``. The trend
    penalties after the first replace it only if clearly better on validation (:func:`_clearly_lower`)."""
    T = x[0].shape[1]
    f_tr, f_val = _features(x[0], kernel), _features(x[1], kernel)
    bases = ("last", "season") if 1 < season <= T else ("last",)
    chosen: tuple[np.ndarray, np.ndarray, np.ndarray, LinearFit] | None = None  # (val errors, weights, bias, fit)
    for penalty in trend_penalties:
        # a larger penalty on the trend block: scale its features down, fit, and scale its weights likewise
        scale = np.r_[np.full(T, penalty**-0.5), np.ones(T)]
        best: tuple[float, np.ndarray, np.ndarray, LinearFit] | None = None
        for base in bases:
            fixed = _base_map(T, horizon, season, base)
            path = _RidgePath(f_tr * scale, y[0] - f_tr @ fixed)
            for alpha in (*alphas, math.inf):
                if alpha == math.inf:  # the simple forecast itself, when no fit beats it on validation
                    weights, bias = np.zeros_like(fixed), np.zeros(horizon)
                else:
                    weights, bias = path.solve(alpha)
                    weights = weights * scale[:, None]
                weights = weights + fixed
                mse = float(np.mean((f_val @ weights + bias - y[1]) ** 2))
                if np.isfinite(mse) and (best is None or mse < best[0]):
                    best = (mse, weights, bias, LinearFit(alpha, base, mse, penalty, (T,)))
        assert best is not None
        err = np.mean((f_val @ best[1] + best[2] - y[1]) ** 2, 1)
        if chosen is None or (best[0] < chosen[3].val_mse and _clearly_lower(err, chosen[0], block)):
            chosen = (err, best[1], best[2], best[3])
    assert chosen is not None
    return chosen[0], _history_map(chosen[1], T, kernel), chosen[2], chosen[3]


@torch.no_grad()
def fit_linear(
    model: LinearForecast,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor] | None,
    season: int = 1,
    alphas: tuple[float, ...] = ALPHAS,
    trend_penalties: tuple[float, ...] = TREND_PENALTIES,
    fractions: tuple[float, ...] = LOOKBACK_FRACTIONS,
) -> LinearFit:
    """Fit ``model`` in closed form on the ``(x (N, T, n), y (N, H, n))`` training windows (already relative, as
    the model will see them); the penalty, the trend block's extra penalty and the base forecast are the ones
    with the lowest MSE on ``val``. The same is done on the last ``fraction * T`` steps of each history, and the
    average of these forecasts replaces the full lookback's when it has a lower val MSE (the average of linear
    maps is a linear map of the full history: the model stores it). Without validation windows: a mild penalty,
    1e-3, on the last value. Returns what was chosen."""
    T, H = model.trend.in_features, model.trend.out_features

    def design(x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        return x.transpose(1, 2).reshape(-1, T).double().numpy(), y.transpose(1, 2).reshape(-1, H).double().numpy()

    x_tr, y_tr = design(*train)
    if val is None or len(val[0]) == 0:
        weights, bias = _RidgePath(_features(x_tr, model.kernel), y_tr).solve(1e-3)
        model.set_weights(weights, bias)
        return LinearFit(1e-3, "last", None, 1.0, (T,))
    x_val, y_val = design(*val)
    block = H * x_tr.shape[0] // max(len(train[0]), 1)  # the rows of H consecutive windows (n targets each)
    if len(x_val) >= MIN_BLOCKS * block:
        alphas = tuple(sorted({*alphas, *FINE_ALPHAS}))
    else:  # too few val windows to choose among more fits (_clearly_lower): fit only the plain one
        trend_penalties, fractions = trend_penalties[:1], ()
    steps = sorted({max(2, min(T, round(f * T))) for f in (1.0, *fractions)} | {T}, reverse=True)
    fits = {}
    for t in steps:
        kernel = model.kernel if t == T else default_kernel(t)
        fits[t] = _fit_one(
            (x_tr[:, -t:], x_val[:, -t:]), (y_tr, y_val), H, season, kernel, block, alphas, trend_penalties
        )
    maps = []
    for t, (_, hist, bias, _) in fits.items():
        full = np.zeros((T, H))
        full[T - t :] = hist  # a shorter lookback's map: no weight on the older steps
        maps.append((full, bias))
    fit = fits[T][3]
    hist, bias = maps[0]
    if len(maps) > 1:
        avg, avg_bias = sum(m for m, _ in maps) / len(maps), sum(b for _, b in maps) / len(maps)
        err = np.mean((x_val @ avg + avg_bias - y_val) ** 2, 1)
        mse = float(err.mean())
        if mse < fit.val_mse and _clearly_lower(err, fits[T][0], block):
            hist, bias = avg, avg_bias
            fit = replace(fit, val_mse=mse, lookbacks=tuple(steps))
    model.set_weights(np.concatenate([hist, hist]), bias)  # trend + remainder = the history: one map for both
    return fit
