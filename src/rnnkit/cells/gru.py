"""Gated recurrent unit cell."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Cell, Params, State


class GRUCell(Cell):
    r"""GRU step (Cho et al. 2014), as ``torch.nn.GRUCell``.

    .. math::
        \begin{aligned}
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{aligned}

    Gate order ``(r, z, n)``: ``weight_ih (3H, F)``, ``weight_hh (3H, H)``. State ``(h,)``, output ``y_t = h_t``.
    ``z_t`` is the keep gate: its bias sets the memory length under chrono init.
    """

    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    fused_mode: ClassVar[str | None] = "gru"
    keep_gate: ClassVar[tuple[int, float] | None] = (1, 1.0)
    gate_names: ClassVar[tuple[str, ...]] = ("r", "z")

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        h, new, _ = self.recur_gates(u, state, p)
        return h, new

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """The step, also returning ``r, z`` (sigmoid gates) and ``n`` (candidate), each ``(B, H)``."""
        h = state[0]
        hh = torch.nn.functional.linear(h, p["weight_hh"], p.get("bias_hh"))  # (B, 3H)
        ur, uz, un = u.chunk(3, 1)
        hr, hz, hn = hh.chunk(3, 1)
        r = torch.sigmoid(ur + hr)
        z = torch.sigmoid(uz + hz)
        n = torch.tanh(un + r * hn)
        h = (1 - z) * n + z * h
        return h, (h,), {"r": r, "z": z, "n": n}
