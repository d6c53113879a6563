"""What a tagger reads of each word besides its id: its casing class and its characters.

A sentence becomes an int array ``(T, F)``: column 0 the word id, then (optionally) the casing class, then
(optionally) the character ids of the word, 0-padded to ``max_chars`` (longer words are cut), so every sentence of
a model has the same width ``F``. :func:`pad_words` collates such arrays into ``(B, T, F)`` plus lengths; the
model's input layer (:class:`rnnkit.layers.inputs.SequenceInput`) splits the columns again.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .text import Vocab

#: casing classes (id 0 is padding): what a lowercased word embedding loses, kept as a small feature
CASINGS = ("<pad>", "lower", "upper", "title", "mixed", "numeric", "has_digit", "punct", "other")
_DIGIT = re.compile(r"\d")


def casing(token: str) -> int:
    """The casing class of ``token`` (an index into :data:`CASINGS`)."""
    letters = [c for c in token if c.isalpha()]
    digits = sum(c.isdigit() for c in token)
    if digits == len(token):
        return CASINGS.index("numeric")
    if digits:
        return CASINGS.index("has_digit")
    if not letters:
        punct = all(unicodedata.category(c).startswith("P") for c in token)
        return CASINGS.index("punct" if punct else "other")
    if all(c.islower() for c in letters):
        return CASINGS.index("lower")
    if all(c.isupper() for c in letters):
        return CASINGS.index("upper")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return CASINGS.index("title")
    return CASINGS.index("mixed")


def normalise(token: str, lowercase: bool, digits: bool) -> str:
    """The form a word is looked up by: lowercased (``lowercase``), every digit as ``0`` (``digits``: dates and
    numbers share their embeddings)."""
    if lowercase:
        token = token.lower()
    return _DIGIT.sub("0", token) if digits else token


class CharVocab:
    """Character <-> id; 0 is padding, 1 unknown. Built from the characters of the training words."""

    pad, unk = 0, 1

    def __init__(self, chars: Sequence[str]) -> None:
        self.itos = ["<pad>", "<unk>", *chars]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def build(cls, words: Iterable[str], min_freq: int = 1) -> CharVocab:
        counts = Counter(c for w in words for c in w)
        return cls([c for c, n in counts.most_common() if n >= min_freq])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, word: str, max_chars: int) -> list[int]:
        return [self.stoi.get(c, self.unk) for c in word[:max_chars]] or [self.unk]

    def to_json(self) -> dict[str, Any]:
        return {"chars": self.itos[2:]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharVocab:
        return cls(data["chars"])


@dataclass
class WordEncoder:
    """Sentences (token lists) -> int arrays ``(T, F)`` for a model that reads words, casing and characters.

    Attributes:
        vocab: word ids (of the normalised words).
        lowercase, digits: how words are normalised before the lookup (see :func:`normalise`).
        chars: the character vocabulary, or None for no character column.
        casing: add the casing column.
        max_chars: characters kept per word (the rest of a very long token is cut).
    """

    vocab: Vocab
    lowercase: bool = False
    digits: bool = False
    chars: CharVocab | None = None
    casing: bool = False
    max_chars: int = 30

    @property
    def packed(self) -> bool:
        """Whether a sentence has more than the word-id column."""
        return self.casing or self.chars is not None

    @property
    def width(self) -> int:
        """``F``, the columns of an encoded sentence (1 without casing and characters)."""
        return 1 + self.casing + (self.max_chars if self.chars is not None else 0)

    def word_ids(self, tokens: Sequence[str]) -> list[int]:
        return self.vocab.encode([normalise(t, self.lowercase, self.digits) for t in tokens])

    def encode(self, tokens: Sequence[str]) -> list[int] | Tensor:
        """Word ids ``[T]`` (no extra columns), or ``(T, F)`` int64 (words, [casing], [characters])."""
        ids = self.word_ids(tokens)
        if not self.packed:
            return ids
        cols = [torch.tensor(ids, dtype=torch.long)[:, None]]
        if self.casing:
            cols.append(torch.tensor([casing(t) for t in tokens], dtype=torch.long)[:, None])
        if self.chars is not None:
            words = [self.chars.encode(t, self.max_chars) for t in tokens]
            chars = torch.zeros(len(tokens), self.max_chars, dtype=torch.long)  # fixed width: one shape per model
            for i, w in enumerate(words):
                chars[i, : len(w)] = torch.tensor(w)
            cols.append(chars)
        return torch.cat(cols, dim=1)


def pad_words(seqs: Sequence[list[int] | Tensor], pad: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad word-id lists into ``(B, T)``, or ``(T_i, F_i)`` arrays into ``(B, T, F)`` (the character
    columns padded to the widest sentence), plus ``lengths (B,)``."""
    if not seqs:
        raise ValueError("pad_words: empty batch")
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    T = int(lengths.max())
    if not isinstance(seqs[0], Tensor):
        out = torch.full((len(seqs), T), pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out, lengths
    F = max(int(s.shape[1]) for s in seqs)  # type: ignore[union-attr]
    out = torch.zeros(len(seqs), T, F, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s), : s.shape[1]] = s  # type: ignore[union-attr]
    out[:, :, 0].masked_fill_(torch.arange(T)[None, :] >= lengths[:, None], pad)
    return out, lengths
