"""Pretrained word vectors in the word2vec / GloVe text format, read from disk (nothing is downloaded).

One word per line followed by its numbers, separated by spaces: ``the 0.418 0.24968 -0.41242 ...``. A first line of
two integers (``400000 100``, the word2vec header) is read as the count and the dimension. ``.gz`` files are
allowed. A line whose dimension differs from the first vector's, or with a number that is not one, is an error
naming the file and the line.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import option
from .text import Vocab


def _lines(path: Path, encoding: str) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding=encoding, errors="strict") as fh:
            yield from fh
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not valid {encoding} ({exc.reason}); pass the file's encoding with {option('encoding')}"
        ) from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read it as word vectors ({exc})") from None


def read_embeddings(
    path: str | Path, *, keep: Callable[[str], bool] | None = None, encoding: str = "utf-8"
) -> tuple[list[str], np.ndarray]:
    """``(words, vectors (N, D) float32)`` from a word2vec/GloVe text file; with ``keep``, only the words it
    accepts (the whole file is still checked). The first occurrence of a word wins."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file ({option('embeddings')} expects word vectors in text format)")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = None
    for number, line in enumerate(_lines(path, encoding), start=1):
        fields = line.rstrip("\n").rstrip(" \r").split(" ")
        if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
            dim = int(fields[1])  # the word2vec header: count and dimension
            continue
        if not line.strip():
            continue
        if dim is None:
            dim = len(fields) - 1
            if dim < 1:
                raise ValueError(f"{path}:{number}: expected 'word number number ...', got {line.strip()[:60]!r}")
        if len(fields) - 1 != dim:
            # words with spaces inside (some GloVe files): the last `dim` fields are the vector
            if len(fields) - 1 < dim:
                raise ValueError(
                    f"{path}:{number}: expected a word and {dim} numbers like the first vector, got "
                    f"{len(fields) - 1} numbers"
                )
            fields = [" ".join(fields[:-dim]), *fields[-dim:]]
        word = fields[0]
        try:
            vector = np.asarray(fields[1:], dtype=np.float32)
        except ValueError:
            bad = next(f for f in fields[1:] if not _is_number(f))
            raise ValueError(f"{path}:{number}: {bad!r} is not a number (word {word!r})") from None
        if not np.isfinite(vector).all():
            raise ValueError(f"{path}:{number}: the vector of {word!r} has a value that is not finite")
        if word in seen or (keep is not None and not keep(word)):
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    if dim is None:
        raise ValueError(f"{path}: no word vectors in the file")
    return words, (np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def embedding_dim(path: str | Path, encoding: str = "utf-8") -> int:
    """The dimension of the vectors in ``path`` (from its first lines)."""
    for number, line in enumerate(_lines(Path(path), encoding), start=1):
        fields = line.split()
        if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
            return int(fields[1])
        if fields:
            return len(fields) - 1
    raise ValueError(f"{path}: no word vectors in the file")


@dataclass
class Vectors:
    """Pretrained vectors: ``words`` and their ``vectors (N, D)``, looked up through ``normalise``."""

    words: list[str]
    vectors: np.ndarray
    normalise: Callable[[str], str]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def extend_vocab(
    vocab: Vocab, path: str | Path, normalise: Callable[[str], str], limit: int, encoding: str = "utf-8"
) -> tuple[Vocab, Vectors]:
    """The training ``vocab`` plus up to ``limit`` more words of the vectors file (in file order: the frequent
    ones first in word2vec/GloVe files), so that words seen only in the vectors keep their meaning at test time;
    and the vectors, to :func:`load_vectors` into the model."""
    words, vectors = read_embeddings(path, encoding=encoding)
    known = set(vocab.itos)
    extra = [w for w in dict.fromkeys(normalise(w) for w in words) if w not in known][: max(limit, 0)]
    return Vocab([*vocab.itos, *extra]), Vectors(words, vectors, normalise)


def load_vectors(embedding: nn.Embedding, itos: list[str], vectors: Vectors) -> int:
    """Copy the vector of each vocabulary entry (``itos``; a vector's word matches as ``normalise(word)``, the
    first match wins) into ``embedding``; the other rows keep their random initialisation, rescaled to the
    vectors' spread so both kinds start alike. Returns how many rows were found."""
    weight = embedding.weight
    if vectors.dim != weight.shape[1]:
        raise ValueError(f"embedding size {weight.shape[1]} differs from the vectors' {vectors.dim}")
    index: dict[str, int] = {}
    for i, w in enumerate(vectors.words):
        index.setdefault(vectors.normalise(w), i)
    found = np.array([index.get(t, -1) for t in itos])
    hit = found >= 0
    if hit.any():
        array = weight.detach().cpu().numpy().copy()
        std = float(vectors.vectors[found[hit]].std()) or 1.0
        array[~hit] *= std / (float(array[~hit].std()) or 1.0)
        array[hit] = vectors.vectors[found[hit]]
        if embedding.padding_idx is not None:
            array[embedding.padding_idx] = 0.0
        with torch.no_grad():
            weight.copy_(torch.from_numpy(array))
    return int(hit.sum())
