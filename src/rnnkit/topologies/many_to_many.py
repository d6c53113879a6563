"""Many-to-many, aligned: one output per input step (tagging, NER with an optional CRF, language models)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..decoding import SamplingConfig, sample_next, sample_sequence
from ..layers.crf import LinearChainCRF
from ..layers.heads import HeadConfig, make_head
from ..layers.inputs import InputConfig, SequenceInput
from .base import RNNConfig, as_lengths, mask_of, select_state


@dataclass
class ManyToManyConfig:
    """Sequence -> sequence of the same length.

    Attributes:
        input: continuous features or token ids.
        rnn: the recurrent core (bidirectional for taggers; unidirectional for language models that generate).
        head: ``classification`` (``num_classes`` tags or, for a language model, the vocabulary) or ``regression``.
        crf: decode tags with a linear-chain CRF over the per-step scores (classification only).
        tie_weights: language models: the output layer reuses the input embedding matrix (Press & Wolf 2017);
            needs token input and ``num_classes == vocab_size``.
    """

    input: InputConfig = field(default_factory=lambda: InputConfig(vocab_size=100))
    rnn: RNNConfig = field(default_factory=RNNConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    crf: bool = False
    tie_weights: bool = False

    def __post_init__(self) -> None:
        if self.crf and self.head.kind != "classification":
            raise ValueError("ManyToManyConfig: crf needs a classification head")
        if self.tie_weights:
            if not self.input.tokens or self.head.kind != "classification":
                raise ValueError("ManyToManyConfig: tie_weights needs token input and a classification head")
            if self.head.num_classes != self.input.vocab_size:
                raise ValueError(
                    f"ManyToManyConfig: tie_weights needs num_classes == vocab_size, got {self.head.num_classes} "
                    f"and {self.input.vocab_size}"
                )
            if self.head.hidden:
                raise ValueError("ManyToManyConfig: tie_weights needs a linear head (head.hidden = 0)")


class ManyToMany(nn.Module):
    """``x (B, T[, F])`` -> per-step outputs ``(B, T, K)`` (scores/logits) or ``(B, T, out)`` (regression).

    ``forward(x, state, lengths) -> (outputs, state)`` has the same call as :class:`rnnkit.Recurrent`, so it runs
    under :func:`rnnkit.tbptt`. A token-in, token-out, unidirectional model is a language model: ``generate``
    continues a prompt one token at a time (the one-to-many use of a many-to-many model).
    """

    def __init__(self, cfg: ManyToManyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input = SequenceInput(cfg.input)
        self.rnn = cfg.rnn.build(self.input.output_size)
        size = cfg.rnn.output_size
        # tied weights: project D*H to the embedding size, then score against the embedding matrix
        self.proj = (
            nn.Linear(size, cfg.input.embedding_dim) if cfg.tie_weights and size != cfg.input.embedding_dim else None
        )
        self.head = make_head(cfg.input.embedding_dim if cfg.tie_weights else size, cfg.head)
        if cfg.tie_weights:
            self.head.net[-1].weight = self.input.embedding.weight  # type: ignore[union-attr,index]
        self.crf = LinearChainCRF(cfg.head.num_classes) if cfg.crf else None

    def forward(
        self, x: Tensor, state: tuple[Tensor, ...] | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        lengths = as_lengths(lengths, x.shape[0], x.shape[1], "ManyToMany")
        out, state = self.rnn(self.input(x), state, lengths)
        if self.proj is not None:
            out = self.proj(out)
        return self.head(out), state

    def loss(self, outputs: Tensor, target: Tensor, lengths: Tensor | None = None) -> Tensor:
        """CRF negative log-likelihood, or cross-entropy / MSE over valid steps only."""
        B, T = outputs.shape[:2]
        mask = mask_of(as_lengths(lengths, B, T, "ManyToMany.loss"), B, T, outputs.device)
        if target.shape[:2] != (B, T):
            raise ValueError(f"ManyToMany.loss: target must start with (B, T) = {(B, T)}, got {tuple(target.shape)}")
        if self.crf is not None:
            return self.crf.nll(outputs, target, mask)
        if self.cfg.head.kind == "classification":
            return F.cross_entropy(outputs[mask], target[mask])
        return F.mse_loss(outputs[mask], target[mask])

    @torch.no_grad()
    def decode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Best tag per step ``(B, T)`` (Viterbi with a CRF, else argmax), 0 past each length."""
        if self.cfg.head.kind != "classification":
            raise ValueError("ManyToMany.decode: only for classification heads; use forward() for regression")
        B, T = x.shape[:2]
        lengths = as_lengths(lengths, B, T, "ManyToMany.decode")
        scores, _ = self(x, lengths=lengths)
        return self.decode_scores(scores, lengths)

    @torch.no_grad()
    def decode_scores(self, scores: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Best tag per step ``(B, T)`` from per-step scores ``(B, T, K)`` that ``forward`` already computed (so an
        evaluation needs one forward pass for both its loss and its decoding)."""
        B, T = scores.shape[:2]
        mask = mask_of(as_lengths(lengths, B, T, "ManyToMany.decode_scores"), B, T, scores.device)
        if self.crf is not None:
            return self.crf.decode(scores, mask)[0]
        return scores.argmax(-1).masked_fill(~mask, 0)

    # ---- language-model use: one token at a time -------------------------------------------------------------
    def _check_lm(self) -> None:
        if not self.cfg.input.tokens or self.cfg.head.kind != "classification" or self.cfg.rnn.bidirectional:
            raise ValueError("generation needs token input, a classification head and a unidirectional rnn")

    def decode_step(self, tokens: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, tuple[Tensor, ...], None]:
        """``tokens (N,)`` -> ``(logits (N, V), state, None)`` in O(1) time per step."""
        y, state = self.rnn.step(self.input(tokens.unsqueeze(1))[:, 0], state)
        if self.proj is not None:
            y = self.proj(y)
        return self.head(y), state, None

    select_state = staticmethod(select_state)

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_length: int,
        sampling: SamplingConfig | None = None,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Continue each prompt ``(B, T0)`` (right-padded, ``lengths``) by up to ``max_length`` tokens.

        Returns the new tokens ``(B, L)`` and their lengths (counting ``stop_token`` when drawn).
        """
        state, last = self._prime(prompt, lengths)
        pad = self.cfg.input.padding_idx or 0
        return sample_sequence(
            self.decode_step, state, last, max_length, sampling or SamplingConfig(), stop_token, pad, generator
        )

    @torch.no_grad()
    def stream(
        self,
        prompt: Tensor,
        sampling: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
        banned: Sequence[int] = (),
    ) -> Iterator[Tensor]:
        """Continue each prompt ``(B, T0)`` forever, one drawn token ``(B,)`` per iteration, in O(1) per token
        (take as many as needed: ``itertools.islice``); ``banned`` tokens (padding, markers) are never drawn.
        Without ``banned``, draws the same tokens as :meth:`generate`."""
        state, last = self._prime(prompt, None)
        sampling = sampling or SamplingConfig()
        ban = torch.as_tensor(list(banned), dtype=torch.long, device=prompt.device)
        while True:
            logits, state, _ = self.decode_step(last, state)
            if len(ban):
                logits = logits.index_fill(-1, ban, float("-inf"))
            last = sample_next(logits, sampling, generator)
            yield last

    def _prime(self, prompt: Tensor, lengths: Tensor | None) -> tuple[tuple[Tensor, ...] | None, Tensor]:
        """The state after all but each prompt's last token, and that token (fed as the first step)."""
        self._check_lm()
        B, T0 = prompt.shape
        lengths = as_lengths(lengths, B, T0, "generate")
        n = lengths if lengths is not None else torch.full((B,), T0, dtype=torch.long)
        state = None
        if T0 > 1:
            _, state = self.rnn(self.input(prompt[:, :-1]), lengths=(n - 1).clamp(min=0))
        return state, prompt.gather(1, (n - 1).to(prompt.device).unsqueeze(1)).squeeze(1)
