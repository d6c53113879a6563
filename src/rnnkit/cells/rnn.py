"""Vanilla (Elman) RNN cells with tanh or ReLU."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from .base import Cell, CellInit, Params, State


class _ModeName:
    """``"rnn_<nonlinearity>"``: an instance's own; on the class, that of its default (the registry name).

    Both ``kind`` and ``fused_mode`` use it, so ``RNNCell(nonlinearity="relu")`` reports ``rnn_relu`` everywhere
    (``Recurrent.cell_kind``, its repr, the torch kernel) while ``RNNCell.kind`` stays ``rnn_tanh``.
    """

    def __get__(self, cell: RNNCell | None, cls: type[RNNCell]) -> str:
        return f"rnn_{cls.default_nonlinearity if cell is None else cell.nonlinearity}"


class RNNCell(Cell):
    r"""Elman RNN step, as ``torch.nn.RNNCell``.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad \phi \in \{\tanh, \mathrm{ReLU}\}

    Shapes: ``x_t (B, F)``, ``h (B, H)``; ``weight_ih (H, F)``, ``weight_hh (H, H)``. Output ``y_t = h_t``.
    Gradients through long chains of ``W_hh`` vanish or explode: this cell forgets after a few dozen steps.
    """

    kind = _ModeName()  # type: ignore[assignment]
    fused_mode = _ModeName()  # type: ignore[assignment]
    gates: ClassVar[int] = 1
    default_nonlinearity: ClassVar[str] = "tanh"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        init: CellInit | None = None,
        nonlinearity: str | None = None,
    ) -> None:
        nonlinearity = nonlinearity or self.default_nonlinearity
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, init)

    def extra_options(self) -> dict[str, Any]:
        return {"nonlinearity": self.nonlinearity}

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        pre = u + torch.nn.functional.linear(state[0], p["weight_hh"], p.get("bias_hh"))  # (B, H)
        h = torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)
        return h, (h,)


class ReLURNNCell(RNNCell):
    """:class:`RNNCell` with ``nonlinearity="relu"`` by default (registry name ``rnn_relu``)."""

    default_nonlinearity: ClassVar[str] = "relu"
