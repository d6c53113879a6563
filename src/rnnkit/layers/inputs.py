"""What goes into the recurrent layer: continuous features as they are, or token ids through an embedding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class InputConfig:
    """The input of a sequence model.

    Give ``input_size`` for continuous features ``(B, T, F)``, or ``vocab_size`` for token ids ``(B, T)``.

    Attributes:
        input_size: features per timestep (continuous input).
        vocab_size: number of token ids (token input).
        embedding_dim: size of the token embedding.
        padding_idx: the padding token id; its embedding is zero and gets no gradient. ``None`` for no padding id.
        dropout: dropout on the embedded/feature inputs in training.
    """

    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64
    padding_idx: int | None = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if (self.input_size is None) == (self.vocab_size is None):
            raise ValueError(
                f"InputConfig: give exactly one of input_size (continuous features) or vocab_size (token ids), "
                f"got input_size={self.input_size}, vocab_size={self.vocab_size}"
            )
        if self.vocab_size is not None and self.padding_idx is not None and not 0 <= self.padding_idx < self.vocab_size:
            raise ValueError(
                f"InputConfig: padding_idx {self.padding_idx} is outside the vocabulary 0..{self.vocab_size - 1}"
            )

    @property
    def tokens(self) -> bool:
        return self.vocab_size is not None

    @property
    def output_size(self) -> int:
        """Features per timestep that reach the recurrent layer."""
        return self.embedding_dim if self.tokens else int(self.input_size)  # type: ignore[arg-type]


class SequenceInput(nn.Module):
    """``(B, T)`` token ids -> ``(B, T, E)`` embeddings, or ``(B, T, F)`` features passed through; then dropout."""

    def __init__(self, cfg: InputConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = (
            nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=cfg.padding_idx) if cfg.tokens else None
        )
        self.dropout = nn.Dropout(cfg.dropout)

    @property
    def output_size(self) -> int:
        return self.cfg.output_size

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is not None:
            if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                raise ValueError(f"expected token ids (B, T) of an integer dtype, got {x.dtype} {tuple(x.shape)}")
            if x.dim() != 2:
                raise ValueError(f"expected token ids (B, T), got shape {tuple(x.shape)}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.cfg.vocab_size):
                raise ValueError(
                    f"token ids must be in 0..{self.cfg.vocab_size - 1} (vocab_size={self.cfg.vocab_size}), "
                    f"got min {int(x.min())}, max {int(x.max())}: is the vocabulary the one the model was built with?"
                )
            return self.dropout(self.embedding(x.long()))
        if x.dim() != 3 or x.shape[-1] != self.cfg.input_size:
            raise ValueError(f"expected features (B, T, {self.cfg.input_size}), got {tuple(x.shape)}")
        return self.dropout(x)
