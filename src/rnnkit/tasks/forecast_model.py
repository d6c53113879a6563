"""The forecasting network: a linear forecast plus a recurrent correction, with quantiles that never cross.

``x (B, T, F)`` (targets first, then covariates) and the known-future covariates ``f (B, H, F_f)`` give
``(B, H, n)``, or ``(B, H, n, Q)`` with quantiles:

    base   = the last observed targets of the window                      (relative=True; else 0)
    linear = LinearForecast(targets - base)                                 (DLinear-style, see forecast_linear)
    rnn    = ManyToOne(inputs with targets - base, context = f)             (an LSTM/GRU/... and a regression head;
                                                                             with ``patch`` > 1 it reads the window
                                                                             in segments of that many steps)
    out    = base + linear + rnn

The recurrent head's last layer starts at zero, so training starts from the linear forecast (fitted in closed form
before training) and learns what it misses. With quantiles the head's output at the median is the correction and
the others are cumulative softplus steps away from it, so the quantiles are ordered by construction.

The buffer ``point_gate`` (saved with the weights) scales the recurrent correction of the point forecast (the
median, or the whole output without quantiles): 1 adds all of it, 0.5 gives the average of the linear and the
corrected forecast, 0 keeps the linear point forecast (the recurrent part then only shapes the interval around it);
the forecaster sets it after training from the validation windows (see :mod:`.forecast_gate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..topologies.many_to_one import ManyToOne, ManyToOneConfig
from .forecast_linear import LinearForecast

if TYPE_CHECKING:
    from .forecast import ForecastConfig

LINEAR = ("frozen", "tuned", "none")


def monotone(raw: Tensor, median: int) -> Tensor:
    """``(..., Q)`` unconstrained -> increasing along the last axis: the ``median`` entry stays, the others are
    cumulative softplus steps above and below it."""
    centre = raw[..., median : median + 1]
    up = torch.cumsum(F.softplus(raw[..., median + 1 :]), -1)
    down = torch.cumsum(F.softplus(raw[..., :median].flip(-1)), -1).flip(-1)
    return torch.cat([centre - down, centre, centre + up], -1)


class ForecastNet(nn.Module):
    """``x (B, timestep, F)`` and known-future covariates ``f (B, horizon, F_f)`` -> ``(B, horizon, n[, Q])``."""

    def __init__(self, cfg: ForecastConfig, n_inputs: int, n_future: int) -> None:
        super().__init__()
        s = cfg.series
        H, n = s.horizon, len(s.target)
        if s.timestep is None:
            raise ValueError("ForecastNet needs a concrete timestep (prepare the series first)")
        if cfg.patch > s.timestep:
            raise ValueError(f"the patch ({cfg.patch} steps) is longer than the lookback (timestep {s.timestep})")
        head = HeadConfig(kind="regression", horizon=H, output_size=n, quantiles=cfg.quantiles)
        inputs = InputConfig(input_size=n_inputs * cfg.patch)
        self.net = ManyToOne(ManyToOneConfig(inputs, cfg.rnn, "last", head, H * n_future))
        self.n_targets, self.relative, self.n_future, self.patch = n, cfg.relative, n_future, cfg.patch
        self.linear = LinearForecast(s.timestep, H) if cfg.linear != "none" else None
        if self.linear is not None:
            last = [m for m in self.net.head.modules() if isinstance(m, nn.Linear)][-1]
            nn.init.zeros_(last.weight)  # the correction starts at zero: training starts from the linear forecast
            nn.init.zeros_(last.bias)
            if cfg.linear == "frozen":
                self.linear.requires_grad_(False)
        qs = cfg.quantiles or ()
        self.median = min(range(len(qs)), key=lambda i: abs(qs[i] - 0.5)) if qs else None
        self.register_buffer("point_gate", torch.ones(()))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        # runs saved before ``point_gate`` existed hold no such tensor: they load with 1, as they predicted
        state_dict.setdefault(prefix + "point_gate", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[arg-type]

    def set_point_gate(self, weight: float) -> None:
        """How much of the recurrent correction the point forecast takes: 1 all, 0 none (the linear forecast)."""
        self.point_gate.fill_(float(weight))

    def relative_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(inputs with the targets relative to the window's last value, that last value (B, n))``."""
        n = self.n_targets
        base = x[:, -1, :n]  # (B, n): the last observed targets
        if not self.relative:
            return x, torch.zeros_like(base)
        return torch.cat([x[..., :n] - base[:, None], x[..., n:]], -1), base

    def patches(self, x: Tensor) -> Tensor:
        """``(B, T, F)`` -> ``(B, T // patch, patch * F)``: what the recurrent part reads, one patch per step (the
        oldest ``T % patch`` steps are left to the linear part)."""
        if self.patch == 1:
            return x
        B, T, F = x.shape
        keep = T - T % self.patch
        return x[:, T - keep :].reshape(B, keep // self.patch, self.patch * F)

    def forward(self, x: Tensor, f: Tensor) -> Tensor:
        xr, base = self.relative_inputs(x)
        pred = self.net(self.patches(xr), context=f.flatten(1) if self.n_future else None)  # (B, H, n[, Q])
        if self.median is not None:
            Q, m = pred.shape[-1], self.median
            one = self.point_gate.new_ones(1)
            gate = torch.cat([one.expand(m), self.point_gate[None], one.expand(Q - m - 1)])  # (Q,): the median's factor
            pred = monotone(pred * gate, m)
        else:
            pred = pred * self.point_gate
        shift = base[:, None, :]  # (B, 1, n)
        if self.linear is not None:
            shift = shift + self.linear(xr[..., : self.n_targets])  # (B, H, n)
        return pred + (shift[..., None] if pred.dim() == 4 else shift)

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        return self.net.head.loss(pred, y)

    def point(self, pred: Tensor) -> Tensor:
        return self.net.head.point(pred)
