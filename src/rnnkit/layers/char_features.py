"""Character-level word features: each word's characters -> one vector, so a word never seen in training still gets
a representation from its spelling (suffixes, capitals, digits, hyphens): a char CNN (Ma & Hovy 2016) or a char
BiLSTM (Lample et al. 2016)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import option

CHAR_KINDS = ("cnn", "lstm")


@dataclass
class CharConfig:
    """Character features of a word.

    Attributes:
        kind: ``cnn`` (convolution over the characters, max-pooled: fast) or ``lstm`` (a BiLSTM over the
            characters; the last forward and first backward states).
        vocab_size: character ids, including padding (id 0) and unknown (id 1); set from the training data.
        dim: character embedding size.
        size: output features per word (CNN filters; for ``lstm``, split between the two directions).
        kernel: CNN window in characters.
        dropout: dropout on the character embeddings in training.
    """

    kind: str = "cnn"
    vocab_size: int = 2
    dim: int = 30
    size: int = 50
    kernel: int = 3
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in CHAR_KINDS:
            raise ValueError(f"CharConfig: {option('chars', self.kind)} is not one of {list(CHAR_KINDS)}")
        for name in ("vocab_size", "dim", "size", "kernel"):
            if getattr(self, name) < 1:
                raise ValueError(f"CharConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.kind == "lstm" and self.size % 2:
            raise ValueError(
                f"CharConfig: a char lstm splits size between two directions; give an even size, got {self.size}"
            )


class CharEncoder(nn.Module):
    """``chars (N, C)`` character ids of N words (0-padded on the right) -> ``(N, size)``.

    A word of no characters (all padding, e.g. a padded time step) gives zeros. Padding positions read as zeros
    whatever the embedding's padding row holds.
    """

    def __init__(self, cfg: CharConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.dim, padding_idx=0)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.kind == "cnn":
            self.conv = nn.Conv1d(cfg.dim, cfg.size, cfg.kernel, padding=cfg.kernel // 2)
        else:
            self.lstm = nn.LSTM(cfg.dim, cfg.size // 2, batch_first=True, bidirectional=True)

    def forward(self, chars: Tensor) -> Tensor:
        if chars.dim() != 2:
            raise ValueError(f"CharEncoder: expected character ids (N, C), got shape {tuple(chars.shape)}")
        N = chars.shape[0]
        out = chars.new_zeros((N, self.cfg.size), dtype=self.embedding.weight.dtype)
        lengths = (chars != 0).sum(1)
        real = lengths > 0
        if not bool(real.any()):
            return out
        ids, lengths = chars[real], lengths[real]
        used = (chars != 0).any(0).nonzero()
        ids = ids[:, : int(used.max()) + 1]  # (n, c): drop the columns that are padding for every word
        valid = ids != 0
        # padding reads as zeros whatever the padding row holds, so trimming columns (here) or not (dense) agree
        e = self.dropout(self.embedding(ids) * valid[..., None])  # (n, c, dim)
        if self.cfg.kind == "cnn":
            h = self.conv(e.transpose(1, 2))  # (n, size, c)
            h = h.masked_fill(~valid[:, None, :], float("-inf")).amax(2)  # max over the word's own characters
        else:
            packed = nn.utils.rnn.pack_padded_sequence(e, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)  # (2, n, size/2): last forward state, first backward state
            h = torch.cat([h_n[0], h_n[1]], dim=-1)
        return out.index_put((real.nonzero().squeeze(1),), h.to(out.dtype))

    def dense(self, chars: Tensor) -> Tensor:
        """The same as :meth:`forward` (eval mode) without data-dependent shapes, for tracing and export: every
        word and every character column is computed and masked. Char CNN only."""
        if self.cfg.kind != "cnn":
            raise ValueError("CharEncoder.dense: only the char CNN has a traceable form; the char lstm does not")
        valid = chars != 0  # (N, C)
        h = self.conv((self.embedding(chars) * valid[..., None]).transpose(1, 2))  # (N, size, C)
        h = h.masked_fill(~valid[:, None, :], float("-inf")).amax(2)
        return torch.where(valid.any(1, keepdim=True), h, torch.zeros_like(h))
