"""Many-to-one: a whole sequence in, one output (classification, sentiment, forecasting)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..layers.heads import HeadConfig, make_head
from ..layers.inputs import InputConfig, SequenceInput
from ..layers.ngrams import BagOfNgrams, NgramConfig
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
        ngrams: token classification: add ``mix`` times the scores of a naive-Bayes bag of n-grams
            (:class:`rnnkit.layers.ngrams.BagOfNgrams`, fitted by counting) to the logits; None for none.

    A classification head's logits (with the bag's votes) are multiplied by the buffer ``temperature`` (1 unless a
    task calibrates the probabilities on validation data after training; a positive factor moves no argmax).
    """

    input: InputConfig = field(default_factory=lambda: InputConfig(input_size=1))
    rnn: RNNConfig = field(default_factory=RNNConfig)
    pooling: str = "last"
    head: HeadConfig = field(default_factory=HeadConfig)
    context_size: int = 0
    ngrams: NgramConfig | None = None

    def __post_init__(self) -> None:
        if self.ngrams is not None and not (self.input.tokens and self.head.kind == "classification"):
            raise ValueError("ManyToOneConfig: ngrams need token input and a classification head")


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
        self.ngrams: BagOfNgrams | None = None
        if cfg.ngrams is not None:
            pad = cfg.input.padding_idx if cfg.input.padding_idx is not None else -1
            self.ngrams = BagOfNgrams(int(cfg.input.vocab_size), cfg.head.num_classes, cfg.ngrams, pad)  # type: ignore[arg-type]
            self.register_buffer("mix", torch.zeros(()))  # the bag's share, chosen on validation data after training
        # scales a classifier's logits, chosen after training (other heads: None, nothing saved)
        self.register_buffer("temperature", torch.ones(()) if cfg.head.kind == "classification" else None)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        # runs saved before the temperature existed hold no such tensor: they load with 1, as they predicted
        if self.temperature is not None:
            state_dict.setdefault(prefix + "temperature", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[arg-type]

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The pooled summary ``(B, D*H)`` that the head reads."""
        lengths = as_lengths(lengths, x.shape[0], x.shape[1], "ManyToOne")
        if self.ngrams is not None:  # ids of words outside the vocabulary (kept for the bag) are <unk> to the network
            x = self.ngrams.known(x)
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
        out = self.head(summary)
        if self.ngrams is not None and bool(self.mix != 0):
            n = lengths if lengths is not None else torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            out = out + self.mix * self.ngrams(x, n)
        if self.temperature is not None:
            out = out * self.temperature  # (times 1: the same floats)
        return out

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return self.head.loss(output, target)
