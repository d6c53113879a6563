"""Readers for the text formats rnnkit trains on; malformed input fails with ``file:line`` and what was expected."""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import option
from .timeseries import read_table


def _open_lines(path: str | Path, encoding: str) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        except (OSError, EOFError) as exc:  # not gzip at all, or cut short
            raise ValueError(
                f"{path}: not a complete gzip file ({exc or 'truncated'}); check or re-download it"
            ) from None
    else:
        raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not valid {encoding} (byte 0x{raw[exc.start]:02x}); pass the file's encoding, "
            f"e.g. {option('encoding', 'latin-1')}"
        ) from None
    # split on \n only: str.splitlines() also breaks at U+0085 and friends, which Latin-1 text contains as bytes
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole file as one string (``.gz`` allowed). An empty file is an error."""
    text = "\n".join(_open_lines(path, encoding))
    if not text.strip():
        raise ValueError(f"{path}: the file is empty; expected text")
    return text


def read_lines(path: str | Path, encoding: str = "utf-8", *, skip_empty: bool = True) -> list[str]:
    """Non-empty lines (``.gz`` allowed)."""
    lines = [ln for ln in _open_lines(path, encoding) if ln.strip() or not skip_empty]
    if not lines:
        raise ValueError(f"{path}: the file has no lines of text")
    return lines


def read_labelled_csv(
    path: str | Path, text_column: str, label_column: str, encoding: str = "utf-8"
) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from two columns of a CSV/Parquet file; labels are returned as strings."""
    frame = read_table(path, encoding=encoding)
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: unknown column(s) {missing}; the file has {list(frame.columns)}; name the columns with "
            f"{option('text_column')} and {option('label_column')}"
        )
    empty = frame[text_column].isna() | frame[label_column].isna()
    if empty.any():
        row = int(empty.to_numpy().nonzero()[0][0]) + 2  # + header, 1-based
        raise ValueError(f"{path}:{row}: empty {text_column!r} or {label_column!r}; every row needs both")
    return frame[text_column].astype(str).tolist(), frame[label_column].astype(str).tolist()


def read_labelled_files(
    files: Mapping[str, str | Path] | Sequence[str | Path], encoding: str = "utf-8"
) -> tuple[list[str], list[str]]:
    """One file per class, one text per line: ``{label: path}``, or paths whose suffix/stem names the label
    (``rt-polarity.pos`` -> ``pos``)."""
    if not isinstance(files, Mapping):
        files = {(Path(p).suffix.lstrip(".") or Path(p).stem): p for p in files}
    texts, labels = [], []
    for label, path in files.items():
        lines = read_lines(path, encoding)
        texts += lines
        labels += [label] * len(lines)
    return texts, labels


FASTTEXT_PREFIX = "__label__"
_LABEL_TEXT = re.compile(r"(\S+)(?:\s+(.*))?")  # first whitespace-separated token, then the rest
_CSV_DELIMITERS = ",\t;|"


def read_label_lines(path: str | Path, encoding: str = "utf-8") -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from one example per line, the label first (``.gz`` allowed; blank lines skipped).

    Two formats, decided by the first non-empty line:

    - fastText: ``__label__pos great film``. A line may carry several labels (``__label__a __label__b text``):
      the first one is the example's label and the others are dropped, since rnnkit classifies one label per text.
      Every line must then start with ``__label__``.
    - first token: ``1 great film`` or ``pos<TAB>great film`` (SST and similar): the first whitespace-separated
      token is the label, the rest of the line the text.

    A label without text, or an empty ``__label__``, is an error naming ``file:line``.
    """
    texts: list[str] = []
    labels: list[str] = []
    fasttext: bool | None = None
    for number, line in enumerate(_open_lines(path, encoding), start=1):
        line = line.strip()
        if not line:
            continue
        if fasttext is None:
            fasttext, first = line.startswith(FASTTEXT_PREFIX), number
        match = _LABEL_TEXT.fullmatch(line)
        assert match is not None  # a stripped, non-empty line always has a first token
        label, text = match.group(1), match.group(2) or ""
        if fasttext:
            if not label.startswith(FASTTEXT_PREFIX):
                raise ValueError(
                    f"{path}:{number}: expected '{FASTTEXT_PREFIX}<label> text' like line {first}, got {line[:60]!r}"
                )
            label = label[len(FASTTEXT_PREFIX) :]
            if not label:
                raise ValueError(f"{path}:{number}: empty label after '{FASTTEXT_PREFIX}'")
            while text.startswith(FASTTEXT_PREFIX):  # further labels: dropped (see the docstring)
                more = _LABEL_TEXT.fullmatch(text)
                assert more is not None
                text = more.group(2) or ""
        if not text:
            raise ValueError(f"{path}:{number}: label {label!r} has no text; expected 'label text' on each line")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise ValueError(f"{path}: no labelled lines; expected 'label text' or '{FASTTEXT_PREFIX}label text' lines")
    return texts, labels


def _head_lines(path: Path, size: int = 1 << 16) -> list[str]:
    """The non-empty lines in the first ``size`` bytes (``.gz`` allowed), decoded leniently: detection must not
    fail on the encoding (reading does, with the hint)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read(size + 1)
    lines = raw[:size].decode("utf-8", errors="replace").split("\n")
    if len(raw) > size:
        lines = lines[:-1]  # cut mid-line
    return [ln.strip() for ln in lines if ln.strip()]


def _looks_like_csv(lines: list[str]) -> bool:
    """Some delimiter splits every sampled line into the same number (>= 2) of fields, quotes respected."""
    for delimiter in _CSV_DELIMITERS:
        widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(widths) == 1 and widths.pop() >= 2:
            return True
    return False


def looks_like_label_lines(
    path: str | Path, encoding: str = "utf-8", *, sample: int = 200, prefixed_only: bool = False
) -> bool:
    """Whether a text file holds ``label text`` lines (see :func:`read_label_lines`) rather than a CSV table.

    True if the first non-empty lines all start with ``__label__``; or if the file is not a CSV (no delimiter
    splits the first ``sample`` lines into equal columns) and every sampled line has a first token and more text,
    with few distinct first tokens (at most 20, and at most half the lines: labels repeat, words of prose do not).
    The second rule needs at least 10 lines (two lines of prose share few first words too). With ``prefixed_only``
    only the ``__label__`` rule applies (for text to classify, where a first word must never be taken for a label).
    Reads only the head of the file; ``encoding`` is accepted for symmetry, decoding is lenient here.
    """
    path = Path(path)
    if not path.is_file() or path.suffix.lower() in (".parquet", ".pq"):
        return False
    lines = _head_lines(path)[:sample]
    if not lines:
        return False
    if all(ln.startswith(FASTTEXT_PREFIX) for ln in lines):
        return True
    if prefixed_only or len(lines) < 10 or _looks_like_csv(lines):
        return False
    split = [ln.split(maxsplit=1) for ln in lines]
    if any(len(parts) < 2 for parts in split):
        return False
    distinct = {parts[0] for parts in split}
    return len(distinct) <= min(20, max(2, len(lines) // 2))


@dataclass
class Sentence:
    """A CoNLL sentence: tokens and their tags (the chosen tag column)."""

    tokens: list[str]
    tags: list[str]


def read_conll(
    path: str | Path,
    *,
    tag_column: int = -1,
    token_column: int = 0,
    separator: str | None = None,
    encoding: str = "utf-8",
    tags_required: bool = True,
) -> list[Sentence]:
    """CoNLL files: one token per line with n columns (tab- or space-separated: ``separator=None`` splits on any
    whitespace), a blank line between sentences, ``-DOCSTART-`` lines skipped. Every token line must have the
    same number of columns as the first. With ``tags_required`` (training, evaluation) a file of one column is an
    error (its tokens would be read as their own tags); without it (tagging new text) the tags are the tokens."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    width = None
    for number, line in enumerate(_open_lines(path, encoding), start=1):
        if not line.strip():
            if tokens:
                sentences.append(Sentence(tokens, tags))
                tokens, tags = [], []
            continue
        cols = line.rstrip("\n").split(separator) if separator else line.split()
        if cols[0] == "-DOCSTART-":
            continue
        if width is None and len(cols) == 1 and tags_required:
            raise ValueError(
                f"{path}:{number}: one column (a token without a tag); training and evaluation need 'token ... tag' "
                "lines (to tag plain tokens, use 'rnnkit predict')"
            )
        width = width or len(cols)
        if len(cols) != width:
            plural = "column" if width == 1 else "columns"
            raise ValueError(
                f"{path}:{number}: expected {width} {plural} like the first token line, got {len(cols)}: "
                f"{line.strip()!r}"
            )
        try:
            tokens.append(cols[token_column])
            tags.append(cols[tag_column])
        except IndexError:
            bad = tag_column if not -len(cols) <= tag_column < len(cols) else token_column
            raise ValueError(
                f"{path}:{number}: no column {bad} (the line has {len(cols)}); "
                f"choose others with {option('tag_column')} and {option('token_column')}"
            ) from None
    if tokens:
        sentences.append(Sentence(tokens, tags))
    if not sentences:
        raise ValueError(f"{path}: no sentences found; expected CoNLL lines 'token ... tag' with blank lines between")
    return sentences


def read_parallel(src: str | Path, tgt: str | Path, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """Line-aligned parallel files (``.gz`` allowed): line i of ``src`` translates to line i of ``tgt``."""
    a, b = _open_lines(src, encoding), _open_lines(tgt, encoding)
    if len(a) != len(b):
        raise ValueError(
            f"parallel files differ in length: {src} has {len(a)} lines, {tgt} has {len(b)}; "
            "line i of one must translate line i of the other"
        )
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if bool(x.strip()) != bool(y.strip()):
            empty = src if not x.strip() else tgt
            raise ValueError(f"{empty}:{i}: empty line whose partner is not empty; the files are misaligned")
    pairs = [(x, y) for x, y in zip(a, b) if x.strip()]
    if not pairs:
        raise ValueError(f"{src}: no sentence pairs")
    return pairs
