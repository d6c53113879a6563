"""Many-to-one: a whole sequence in, one output (classification, sentiment, forecasting)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..layers.heads import HeadConfig, make_head
from ..layers.inputs import InputConfig, SequenceInput
from ..layers.pooling import Pooling
from .base import RNNConfig, as_lengths


@dataclass
class ManyToOneConfig:
    """Sequence -> one output.

    Attributes:
        input: continuous features or token ids.
        rnn: the recurrent core.
        pooling: ``last`` (state after the last valid step; bidirectional: last forward ⊕ first backward),
            ``mean``, ``max`` or ``attention``.
        head: classification, or regression with a ``horizon`` (multi-step forecast) and optional ``quantiles``.
        context_size: size of an extra vector given to the head beside the pooled summary (e.g. the flattened
            known-future covariates of a forecast horizon, or static features); 0 for none.
    """

    input: InputConfig = field(default_factory=lambda: InputConfig(input_size=1))
    rnn: RNNConfig = field(default_factory=RNNConfig)
    pooling: str = "last"
    head: HeadConfig = field(default_factory=HeadConfig)
    context_size: int = 0


class ManyToOne(nn.Module):
    """``x (B, T[, F])`` with ``lengths (B,)`` (and ``context (B, C)``) -> ``logits (B, classes)`` or
    ``(B, horizon, out[, Q])``."""

    def __init__(self, cfg: ManyToOneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input = SequenceInput(cfg.input)
        self.rnn = cfg.rnn.build(self.input.output_size)
        self.pool = Pooling(cfg.pooling, cfg.rnn.output_size, self.rnn.num_directions)
        self.head = make_head(cfg.rnn.output_size + cfg.context_size, cfg.head)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled summary ``(B, D*H)`` that the head reads."""
        lengths = as_lengths(lengths, x.shape[0], x.shape[1], "ManyToOne")
        out, state = self.rnn(self.input(x), lengths=lengths)
        return self.pool(out, lengths, state[0])

    def forward(self, x: Tensor, lengths: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        summary = self.encode(x, lengths)
        if self.cfg.context_size:
            if context is None or context.shape != (x.shape[0], self.cfg.context_size):
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"ManyToOne: expected context (B, {self.cfg.context_size}), got {got}")
            summary = torch.cat([summary, context], dim=-1)
        elif context is not None:
            raise ValueError("ManyToOne: this model takes no context (context_size=0)")
        return self.head(summary)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return self.head.loss(output, target)
