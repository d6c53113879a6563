"""Layer-normalised LSTM cell (Ba, Kiros & Hinton 2016)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import Cell, CellInit, Params, State


class LayerNormLSTMCell(Cell):
    r"""LSTM step with layer normalisation of both projections and of the cell state (Ba et al. 2016, eq. 20-22).

    .. math::
        \begin{aligned}
        (i, f, g, o)_t &= \mathrm{LN}(W_{ih} x_t;\ \gamma_{ih}) + \mathrm{LN}(W_{hh} h_{t-1};\ \gamma_{hh}) + b_{ih} \\
        c_t &= \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \\
        h_t &= \sigma(o_t) \odot \tanh(\mathrm{LN}(c_t;\ \gamma_c, \beta_c))
        \end{aligned}

    ``LN(a; γ, β) = γ ⊙ (a - mean(a)) / sqrt(var(a) + eps) + β`` over the feature axis; the two projections are each
    normalised over all ``4H`` gate pre-activations. Gate order ``(i, f, g, o)`` as LSTM.
    Parameters: ``weight_ih (4H, F)``, ``weight_hh (4H, H)``, ``bias_ih (4H)``, ``ln_ih_weight (4H)``,
    ``ln_hh_weight (4H)``, ``ln_c_weight (H)``, ``ln_c_bias (H)``. State ``(h, c)``, each ``(B, H)``.
    No torch kernel computes this cell; a layer runs it through :func:`rnnkit.cells.lnlstm_kernel.lnlstm_sequence`,
    a whole-sequence C++ forward and hand-written backward.
    """

    kind: ClassVar[str] = "layernorm_lstm"
    num_states: ClassVar[int] = 2
    gates: ClassVar[int] = 4
    keep_gate: ClassVar[tuple[int, float] | None] = (1, 1.0)
    input_gate: ClassVar[int | None] = 0
    forget_bias_ok: ClassVar[bool] = True
    gate_names: ClassVar[tuple[str, ...]] = ("i", "f", "o")

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, init: CellInit | None = None, eps: float = 1e-5
    ) -> None:
        self.eps = eps
        super().__init__(input_size, hidden_size, bias, init)

    def extra_options(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        G, H, In = 4 * self.hidden_size, self.hidden_size, self.input_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (G, In), "weight_hh": (G, H)}
        if self.bias:
            shapes["bias_ih"] = (G,)
        shapes |= {"ln_ih_weight": (G,), "ln_hh_weight": (G,), "ln_c_weight": (H,)}
        if self.bias:
            shapes["ln_c_bias"] = (H,)
        return shapes

    def _reset_special(self) -> None:
        for name in ("ln_ih_weight", "ln_hh_weight", "ln_c_weight"):
            getattr(self, name).fill_(1.0)
        if self.bias:
            self.bias_ih.zero_()
            self.ln_c_bias.zero_()

    def project(self, x: Tensor, p: Params) -> Tensor:
        # LN of W_ih x does not depend on h, so it is computed for all timesteps at once.
        u = F.layer_norm(F.linear(x, p["weight_ih"]), (4 * self.hidden_size,), p["ln_ih_weight"], None, self.eps)
        return u + p["bias_ih"] if "bias_ih" in p else u

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        h, new, _ = self.recur_gates(u, state, p)
        return h, new

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """The step, also returning ``i, f, o`` (sigmoid gates) and ``g`` (candidate), each ``(B, H)``."""
        h, c = state
        H = self.hidden_size
        hh = F.layer_norm(F.linear(h, p["weight_hh"]), (4 * H,), p["ln_hh_weight"], None, self.eps)  # (B, 4H)
        i, f, g, o = (u + hh).chunk(4, 1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(F.layer_norm(c, (H,), p["ln_c_weight"], p.get("ln_c_bias"), self.eps))
        return h, (h, c), {"i": i, "f": f, "g": g, "o": o}

    def scan(self, x: Tensor, state: State, p: Params, lengths: Tensor | None) -> tuple[Tensor, State] | None:
        from .lnlstm_kernel import lnlstm_sequence

        return lnlstm_sequence(x, state, p, lengths, self.eps)
