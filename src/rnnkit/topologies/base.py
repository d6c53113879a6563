"""Shared pieces of the five shapes: the recurrent-layer config and input/length checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..cells import CellInit
from ..errors import option
from ..recurrent import Recurrent


@dataclass
class RNNConfig:
    """The recurrent core of a model (see :class:`rnnkit.Recurrent`).

    Attributes:
        cell: ``rnn_tanh``, ``rnn_relu``, ``lstm``, ``gru``, ``layernorm_lstm``, ``mingru``, ``minlstm`` or a
            registered custom cell.
        hidden_size: H.
        num_layers: stacked layers.
        bidirectional: also read each sequence backwards (encoders and taggers; not for generation).
        dropout: between stacked layers.
        impl: ``auto``, ``reference`` or ``fused``.
        forget_bias, orthogonal, chrono: the :class:`rnnkit.CellInit` memory options.
        cell_options: extra cell options, e.g. ``{"eps": 1e-5}`` for the layer-norm LSTM.
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    impl: str = "auto"
    forget_bias: float | None = None
    orthogonal: bool = False
    chrono: int | None = None
    cell_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"RNNConfig: {option(name)} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"RNNConfig: {option('dropout')} must be in [0, 1), got {self.dropout}")
        from ..cells import cell_class

        try:
            cell_class(self.cell)
        except ValueError as exc:
            raise ValueError(f"RNNConfig: {exc} ({option('cell')})") from None

    def build(self, input_size: int) -> Recurrent:
        init = CellInit(self.forget_bias, self.orthogonal, self.chrono)
        return Recurrent(
            self.cell,
            input_size,
            self.hidden_size,
            self.num_layers,
            self.bidirectional,
            self.dropout,
            self.impl,
            init=init,
            cell_options=self.cell_options,
        )  # type: ignore[arg-type]

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)


def as_lengths(lengths: Tensor | None, B: int, T: int, where: str) -> Tensor | None:
    """Validate ``lengths (B,)`` in ``1..T`` (or None) and return it as CPU int64."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (B,) or lengths.is_floating_point():
        raise ValueError(f"{where}: lengths must be (B,) = ({B},) integers, got {tuple(lengths.shape)} {lengths.dtype}")
    lengths = lengths.to("cpu", torch.int64)
    if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
        raise ValueError(f"{where}: lengths must be in 1..{T}, got min {int(lengths.min())}, max {int(lengths.max())}")
    return lengths


def mask_of(lengths: Tensor | None, B: int, T: int, device: torch.device) -> Tensor:
    """``(B, T)`` bool, True at valid steps."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]


def select_state(state: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
    """Keep/reorder/duplicate batch entries of a recurrent state (each ``(L*D, B, H)``)."""
    return tuple(s.index_select(1, index) for s in state)
