"""One-to-many: one condition in, a generated sequence out (captioning-style generation, pattern emission)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..decoding import SamplingConfig, sample_sequence
from .base import RNNConfig, as_lengths, mask_of, select_state


@dataclass
class OneToManyConfig:
    """Condition -> sequence, each output fed back as the next input.

    Attributes:
        condition: ``vector`` (a ``(B, condition_size)`` vector sets the initial state; the first input is ``bos``)
            or ``token`` (a first token ``(B,)`` is the first input, from the zero state).
        condition_size: size of the condition vector.
        vocab_size: generate tokens from this vocabulary (fed back through an embedding) ...
        output_size: ... or continuous vectors of this size (fed back through a linear map).
        embedding_dim: size of what the recurrent layer reads per step.
        rnn: the recurrent core (unidirectional: generation runs forward in time).
        bos, eos, pad: special token ids (token outputs).
    """

    condition: str = "vector"
    condition_size: int = 1
    vocab_size: int | None = None
    output_size: int | None = None
    embedding_dim: int = 64
    rnn: RNNConfig = field(default_factory=RNNConfig)
    bos: int = 2
    eos: int = 3
    pad: int = 0

    def __post_init__(self) -> None:
        if self.condition not in ("vector", "token"):
            raise ValueError(f"OneToManyConfig: condition must be 'vector' or 'token', got {self.condition!r}")
        if (self.vocab_size is None) == (self.output_size is None):
            raise ValueError("OneToManyConfig: give exactly one of vocab_size (tokens) or output_size (vectors)")
        if self.condition == "token" and self.vocab_size is None:
            raise ValueError("OneToManyConfig: a token condition needs token outputs (vocab_size)")
        if self.rnn.bidirectional:
            raise ValueError("OneToManyConfig: generation runs forward in time; use a unidirectional rnn")


class OneToMany(nn.Module):
    """Generate a sequence from a condition.

    Training uses teacher forcing: ``forward(condition, targets)`` feeds the true previous output at every step
    and returns ``logits (B, T, V)`` (tokens) or ``predictions (B, T, D)`` (vectors) for ``targets``.
    ``generate`` feeds back the model's own outputs.
    """

    def __init__(self, cfg: OneToManyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokens = cfg.vocab_size is not None
        E, H, L = cfg.embedding_dim, cfg.rnn.hidden_size, cfg.rnn.num_layers
        if self.tokens:
            self.embed: nn.Module = nn.Embedding(cfg.vocab_size, E, padding_idx=cfg.pad)  # type: ignore[arg-type]
            self.out = nn.Linear(H, cfg.vocab_size)  # type: ignore[arg-type]
        else:
            self.embed = nn.Linear(cfg.output_size, E)  # type: ignore[arg-type]
            self.start = nn.Parameter(torch.zeros(cfg.output_size))  # type: ignore[arg-type]
            self.out = nn.Linear(H, cfg.output_size)  # type: ignore[arg-type]
        self.rnn = cfg.rnn.build(E)
        # the condition vector sets every layer's initial state (h, and c for LSTMs)
        self.bridge = (
            nn.ModuleList(nn.Linear(cfg.condition_size, L * H) for _ in range(self.rnn.num_states))
            if cfg.condition == "vector"
            else None
        )

    def initial_state(self, condition: Tensor) -> tuple[Tensor, ...] | None:
        if self.bridge is None:
            return None
        if condition.dim() != 2 or condition.shape[1] != self.cfg.condition_size:
            raise ValueError(
                f"OneToMany: expected a condition (B, {self.cfg.condition_size}), got {tuple(condition.shape)}"
            )
        B, L, H = condition.shape[0], self.cfg.rnn.num_layers, self.cfg.rnn.hidden_size
        states = [lin(condition).view(B, L, H).transpose(0, 1).contiguous() for lin in self.bridge]
        states[0] = torch.tanh(states[0])  # h lives in (-1, 1)
        return tuple(states)

    def _first(self, condition: Tensor) -> Tensor:
        """The first input: the condition token, ``bos``, or the learned start vector."""
        B = condition.shape[0]
        if self.cfg.condition == "token":
            if condition.dim() != 1 or condition.dtype != torch.long:
                raise ValueError(
                    f"OneToMany: a token condition is (B,) int64, got {tuple(condition.shape)} {condition.dtype}"
                )
            return condition
        if self.tokens:
            return torch.full((B,), self.cfg.bos, dtype=torch.long, device=condition.device)
        return self.start.expand(B, -1)

    def forward(self, condition: Tensor, targets: Tensor) -> Tensor:
        """Teacher forcing: scores for ``targets (B, T)`` (tokens) or predictions for ``targets (B, T, D)``."""
        first = self._first(condition)
        inputs = torch.cat([first.unsqueeze(1), targets[:, :-1]], dim=1)
        out, _ = self.rnn(self.embed(inputs), self.initial_state(condition))
        return self.out(out)

    def loss(self, output: Tensor, targets: Tensor, lengths: Tensor | None = None) -> Tensor:
        B, T = targets.shape[:2]
        mask = mask_of(as_lengths(lengths, B, T, "OneToMany.loss"), B, T, output.device)
        if self.tokens:
            return F.cross_entropy(output[mask], targets[mask])
        return F.mse_loss(output[mask], targets[mask])

    def decode_step(self, inputs: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, tuple[Tensor, ...], None]:
        """One step: previous token ids ``(N,)`` or vectors ``(N, D)`` -> ``(logits or prediction, state, None)``."""
        y, state = self.rnn.step(self.embed(inputs), state)
        return self.out(y), state, None

    select_state = staticmethod(select_state)

    @torch.no_grad()
    def generate(
        self,
        condition: Tensor,
        max_length: int,
        sampling: SamplingConfig | None = None,
        stop_token: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Tokens ``(B, L)`` with lengths ``(B,)`` (greedy/temperature/top-k/top-p, stopping at ``stop_token``,
        default ``eos``), or for vector outputs the predictions ``(B, max_length, D)`` with lengths all
        ``max_length``."""
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        state, first = self.initial_state(condition), self._first(condition)
        if self.tokens:
            stop = self.cfg.eos if stop_token is None else stop_token
            return sample_sequence(
                self.decode_step, state, first, max_length, sampling or SamplingConfig(), stop, self.cfg.pad, generator
            )
        outs, prev = [], first
        for _ in range(max_length):
            prev, state, _ = self.decode_step(prev, state)
            outs.append(prev)
        return torch.stack(outs, 1), torch.full((condition.shape[0],), max_length, dtype=torch.long)
