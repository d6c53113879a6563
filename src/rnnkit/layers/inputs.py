"""What goes into the recurrent layer: continuous features as they are, or token ids through an embedding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .char_features import CharConfig, CharEncoder


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
        word_dropout: token input: in training, this fraction of the (non-padding) ids is replaced by ``unk_idx``,
            so the model learns what to do with words it has not seen (and leans less on memorised ones).
        unk_idx: the unknown-token id that word dropout substitutes.
        casing_classes, casing_dim: token input: each step also carries a casing class (of ``casing_classes``),
            embedded into ``casing_dim`` features (see :mod:`rnnkit.data.word_features`); 0: none.
        char: token input: each step also carries the word's character ids, read by a char CNN or BiLSTM
            (:class:`rnnkit.layers.char_features.CharEncoder`); None: none.

    With casing or characters, the input is ``(B, T, F)`` int: column 0 the token id, then the casing class (if
    any), then the character ids (0-padded); the embeddings are concatenated, then dropout.
    """

    input_size: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64
    padding_idx: int | None = 0
    dropout: float = 0.0
    word_dropout: float = 0.0
    unk_idx: int = 1
    casing_classes: int = 0
    casing_dim: int = 0
    char: CharConfig | None = None

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
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"InputConfig: word_dropout must be in [0, 1), got {self.word_dropout}")
        if not self.tokens and (self.word_dropout or self.casing_classes or self.char is not None):
            raise ValueError("InputConfig: word_dropout, casing and char features need token input (vocab_size)")
        if (self.casing_classes > 0) != (self.casing_dim > 0):
            raise ValueError(
                f"InputConfig: give both casing_classes and casing_dim (or neither), got {self.casing_classes} and "
                f"{self.casing_dim}"
            )

    @property
    def tokens(self) -> bool:
        return self.vocab_size is not None

    @property
    def packed(self) -> bool:
        """Token input with extra columns (casing, characters): ``(B, T, F)`` ints instead of ``(B, T)``."""
        return self.casing_classes > 0 or self.char is not None

    @property
    def output_size(self) -> int:
        """Features per timestep that reach the recurrent layer."""
        if not self.tokens:
            return int(self.input_size)  # type: ignore[arg-type]
        return self.embedding_dim + self.casing_dim + (self.char.size if self.char is not None else 0)


class SequenceInput(nn.Module):
    """``(B, T)`` token ids -> ``(B, T, E)`` embeddings, or ``(B, T, F)`` features passed through; then dropout.

    With casing or character features (``cfg.packed``): ``(B, T, F)`` ints -> ``(B, T, E + casing_dim + char
    size)``: the token, casing and character embeddings of each step, concatenated.
    """

    def __init__(self, cfg: InputConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = (
            nn.Embedding(cfg.vocab_size, cfg.embedding_dim, padding_idx=cfg.padding_idx) if cfg.tokens else None
        )
        self.casing = nn.Embedding(cfg.casing_classes, cfg.casing_dim, padding_idx=0) if cfg.casing_classes else None
        self.chars = CharEncoder(cfg.char) if cfg.char is not None else None
        self.dropout = nn.Dropout(cfg.dropout)

    @property
    def output_size(self) -> int:
        return self.cfg.output_size

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is not None:
            if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                raise ValueError(f"expected token ids (B, T) of an integer dtype, got {x.dtype} {tuple(x.shape)}")
            if self.cfg.packed:
                return self._packed(x)
            if x.dim() != 2:
                raise ValueError(f"expected token ids (B, T), got shape {tuple(x.shape)}")
            return self.dropout(self._embed(x))
        if x.dim() != 3 or x.shape[-1] != self.cfg.input_size:
            raise ValueError(f"expected features (B, T, {self.cfg.input_size}), got {tuple(x.shape)}")
        return self.dropout(x)

    def _embed(self, ids: Tensor) -> Tensor:
        """Token ids ``(B, T)`` -> ``(B, T, E)``, with word dropout in training."""
        assert self.embedding is not None
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.vocab_size):
            raise ValueError(
                f"token ids must be in 0..{self.cfg.vocab_size - 1} (vocab_size={self.cfg.vocab_size}), "
                f"got min {int(ids.min())}, max {int(ids.max())}: is the vocabulary the one the model was built with?"
            )
        ids = ids.long()
        if self.training and self.cfg.word_dropout > 0:
            drop = torch.rand(ids.shape, device=ids.device) < self.cfg.word_dropout
            if self.cfg.padding_idx is not None:
                drop &= ids != self.cfg.padding_idx
            ids = ids.masked_fill(drop, self.cfg.unk_idx)
        return self.embedding(ids)

    def _packed(self, x: Tensor) -> Tensor:
        """``(B, T, F)`` = token id, [casing class], [character ids] -> ``(B, T, E + casing + chars)``."""
        need = 1 + (self.casing is not None) + (self.chars is not None)
        if x.dim() != 3 or x.shape[-1] < need:
            raise ValueError(
                f"expected (B, T, F) ints with F >= {need} (token id, casing class, character ids), got shape "
                f"{tuple(x.shape)}"
            )
        B, T = x.shape[:2]
        parts = [self._embed(x[..., 0])]
        col = 1
        if self.casing is not None:
            casing = x[..., col].long()
            if casing.numel() and (int(casing.min()) < 0 or int(casing.max()) >= self.cfg.casing_classes):
                raise ValueError(f"casing classes must be in 0..{self.cfg.casing_classes - 1}")
            parts.append(self.casing(casing))
            col += 1
        if self.chars is not None:
            chars = x[..., col:].long().reshape(B * T, -1)
            if chars.numel() and (int(chars.min()) < 0 or int(chars.max()) >= self.chars.cfg.vocab_size):
                raise ValueError(f"character ids must be in 0..{self.chars.cfg.vocab_size - 1}")
            parts.append(self.chars(chars).view(B, T, -1))
        return self.dropout(torch.cat(parts, dim=-1))

    def features(self, x: Tensor) -> Tensor:
        """What ``forward`` gives in eval mode, without input checks or data-dependent shapes (for tracing and
        export): ``(B, T)`` ids or, packed, ``(B, T, F)`` -> ``(B, T, output_size)``."""
        assert self.embedding is not None
        if not self.cfg.packed:
            return self.embedding(x)
        B, T = x.shape[:2]
        parts, col = [self.embedding(x[..., 0])], 1
        if self.casing is not None:
            parts.append(self.casing(x[..., 1]))
            col = 2
        if self.chars is not None:
            parts.append(self.chars.dense(x[..., col:].reshape(B * T, -1)).view(B, T, -1))
        return torch.cat(parts, dim=-1)
