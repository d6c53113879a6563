"""Text: tokenisers (characters, words, learned subwords) and the vocabulary that maps tokens to ids."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3 in every Vocab

_WORD = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]", re.UNICODE)


class CharTokenizer:
    """Characters as tokens; ``detokenize`` joins them back exactly."""

    level = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level}


class WordTokenizer:
    """Words and punctuation marks as tokens (``lowercase`` optional); ``split`` uses whitespace only
    (for pre-tokenised text such as CoNLL or MR)."""

    level = "word"

    def __init__(self, lowercase: bool = False, split: bool = False) -> None:
        self.lowercase, self.split = lowercase, split

    def tokenize(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        return text.split() if self.split else _WORD.findall(text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        text = " ".join(tokens)
        return re.sub(r" ([.,!?;:%)\]}'])", r"\1", text).replace("( ", "(")

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "split": self.split}


class SubwordTokenizer:
    """Byte-pair-encoding subwords learned with the ``tokenizers`` library (Sennrich et al. 2016)."""

    level = "subword"

    def __init__(self, model: Any) -> None:
        self.model = model

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> SubwordTokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIALS))
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    def tokenize(self, text: str) -> list[str]:
        return self.model.encode(text).tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        return self.model.decoder.decode(list(tokens))

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "model": self.model.to_str()}


def auto_subword_vocab(words: int) -> int:
    """A BPE vocabulary size for a training text of ``words`` running words (all sides together): about
    ``8 * sqrt(words)``, rounded to 500, within 1,000..32,000. Small corpora get few merges, so that every piece is
    seen often enough to be learned (Sennrich & Zhang 2019: low-resource systems want small vocabularies); a corpus
    of a million words gets 8,000 and web-scale corpora the usual 32,000."""
    if words < 0:
        raise ValueError(f"auto_subword_vocab: words must be >= 0, got {words}")
    return int(min(32_000, max(1_000, round(8 * words**0.5 / 500) * 500)))


def tokenizer_from_json(data: dict[str, Any]) -> CharTokenizer | WordTokenizer | SubwordTokenizer:
    level = data.get("level")
    if level == "char":
        return CharTokenizer()
    if level == "word":
        return WordTokenizer(data.get("lowercase", False), data.get("split", False))
    if level == "subword":
        from tokenizers import Tokenizer

        return SubwordTokenizer(Tokenizer.from_str(data["model"]))
    raise ValueError(f"unknown tokenizer level {level!r}; expected 'char', 'word' or 'subword'")


def make_tokenizer(
    level: str, *, lowercase: bool = False, texts: Iterable[str] | None = None, vocab_size: int = 8000
) -> CharTokenizer | WordTokenizer | SubwordTokenizer:
    """``char``, ``word``, ``split`` (whitespace) or ``subword`` (trained on ``texts``)."""
    if level == "char":
        return CharTokenizer()
    if level in ("word", "split"):
        return WordTokenizer(lowercase, split=level == "split")
    if level == "subword":
        if texts is None:
            raise ValueError("a subword tokenizer is learned from texts; pass texts=")
        return SubwordTokenizer.train(texts, vocab_size)
    raise ValueError(f"unknown tokenizer level {level!r}; expected 'char', 'word', 'split' or 'subword'")


class Vocab:
    """Token <-> id. Ids 0-3 are ``<pad> <unk> <bos> <eos>``; unknown tokens map to ``<unk>``.

    Build with :meth:`build` (min frequency, max size; most frequent first, ties in first-seen order).
    """

    pad, unk, bos, eos = 0, 1, 2, 3

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"Vocab: the first four tokens must be {list(SPECIALS)}, got {list(tokens[:4])}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocab: tokens must be unique")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """From tokenised sequences: tokens seen at least ``min_freq`` times, at most ``max_size`` in all."""
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        kept = [t for t, c in counts.most_common() if c >= min_freq and t not in SPECIALS]
        if max_size is not None:
            if max_size < len(SPECIALS):
                raise ValueError(
                    f"Vocab.build: max_size must be >= {len(SPECIALS)} (the special tokens), got {max_size}"
                )
            kept = kept[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str], bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.stoi.get(t, self.unk) for t in tokens]
        return ([self.bos] if bos else []) + ids + ([self.eos] if eos else [])

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> list[str]:
        """Tokens of ``ids``; stops at ``<eos>`` and drops specials when ``skip_special``."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"Vocab.decode: id {i} is outside 0..{len(self.itos) - 1}")
            if skip_special and i == self.eos:
                break
            if skip_special and i < len(SPECIALS):
                continue
            out.append(self.itos[i])
        return out

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.itos}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocab:
        return cls(data["tokens"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_json(json.loads(Path(path).read_text()))
