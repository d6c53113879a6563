"""One-to-one: one input vector, one output (the degenerate RNN)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

from ..layers.heads import HeadConfig, make_head
from .base import RNNConfig


@dataclass
class OneToOneConfig:
    """A single recurrent step on one input vector, then a head.

    Attributes:
        input_size: features of the input vector.
        rnn: the recurrent core (its cell runs exactly one step from the zero state).
        head: classification or regression head.
    """

    input_size: int = 1
    rnn: RNNConfig = field(default_factory=RNNConfig)
    head: HeadConfig = field(default_factory=HeadConfig)


class OneToOne(nn.Module):
    """``x (B, F)`` -> one output: ``logits (B, C)`` or ``(B, horizon, out)``.

    The degenerate RNN: with a single step from the zero state there is nothing to remember, so the cell acts as
    a gated feed-forward layer (an LSTM step is ``h = σ(o) ⊙ tanh(σ(i) ⊙ tanh(g))`` of ``W_ih x + b``). It is
    here so that every input/output shape has a model, and as the baseline that shows what memory adds.
    """

    def __init__(self, cfg: OneToOneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.rnn = cfg.rnn.build(cfg.input_size)
        self.head = make_head(cfg.rnn.output_size, cfg.head)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.cfg.input_size:
            raise ValueError(f"OneToOne: expected input (B, {self.cfg.input_size}), got {tuple(x.shape)}")
        out, _ = self.rnn(x.unsqueeze(1))  # (B, 1, D*H): one step, every direction
        return self.head(out[:, 0])

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return self.head.loss(output, target)
