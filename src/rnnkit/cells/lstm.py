"""Long short-term memory cell."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .base import Cell, Params, State


class LSTMCell(Cell):
    r"""LSTM step (Hochreiter & Schmidhuber 1997, with forget gate), as ``torch.nn.LSTMCell``.

    .. math::
        \begin{aligned}
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)
        \end{aligned}

    Gate order ``(i, f, g, o)``: ``weight_ih (4H, F)``, ``weight_hh (4H, H)``. State ``(h, c)``, each ``(B, H)``;
    output ``y_t = h_t``. The additive cell update ``c_t`` is what carries gradients across long gaps.
    """

    kind: ClassVar[str] = "lstm"
    num_states: ClassVar[int] = 2
    gates: ClassVar[int] = 4
    fused_mode: ClassVar[str | None] = "lstm"
    keep_gate: ClassVar[tuple[int, float] | None] = (1, 1.0)
    input_gate: ClassVar[int | None] = 0
    forget_bias_ok: ClassVar[bool] = True
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "o")

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        h, new, _ = self.recur_gates(u, state, p)
        return h, new

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """The step, also returning ``i, f, o`` (sigmoid gates) and ``g`` (candidate), each ``(B, H)``."""
        h, c = state
        gates = u + torch.nn.functional.linear(h, p["weight_hh"], p.get("bias_hh"))  # (B, 4H)
        i, f, g, o = gates.chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, (h, c), {"i": i, "f": f, "g": g, "o": o}
