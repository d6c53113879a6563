"""Sequence tagging (NER, chunking, POS): a many-to-many RNN with an optional CRF, scored by entity-level F1."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.batching import pad_sequences
from ..data.embeddings import extend_vocab, load_vectors
from ..data.readers import Sentence, read_conll, read_lines
from ..data.text import Vocab
from ..data.word_features import CASINGS, CharVocab, WordEncoder, normalise, pad_words
from ..errors import option
from ..layers.char_features import CharConfig
from ..layers.crf import scheme_constraints
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import entity_scores, most_frequent_tags
from ..topologies.base import RNNConfig
from ..topologies.many_to_many import ManyToMany, ManyToManyConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Inputs, Task, bucket_loader
from .flags import Flag


@dataclass
class TagConfig:
    """Sequence tagging from CoNLL files.

    Attributes:
        token_column, tag_column: CoNLL columns of the token and of the tag to learn (-1: the last).
        separator: column separator (None: any whitespace; ``"\\t"`` for tab-separated files).
        lowercase: look words up lowercased (the casing feature and the characters keep the capitals).
        digits: look words up with every digit as 0 (numbers and dates share embeddings).
        min_freq: words seen fewer times in training become ``<unk>``.
        encoding: text encoding of the files.
        embedding_dim, dropout: word embedding size (with ``embeddings``: the file's) and dropout on the word
            features and before the output layer.
        embeddings: a word2vec/GloVe text file of pretrained word vectors (None: learned from scratch).
        embeddings_vocab: the most words of that file added to the vocabulary besides the training words.
        word_dropout: in training, this fraction of words is replaced by ``<unk>`` (learns to tag unseen words).
        casing_dim: size of the casing feature (lower, UPPER, Title, digits ...); 0: none.
        char: character features of each word (a char CNN or BiLSTM); None: none.
        rnn: the recurrent core (bidirectional by default: a tag depends on both sides).
        crf: decode with a linear-chain CRF (learns which tag may follow which).
        constrain: with a CRF and IOB2/BIOES tags, forbid invalid transitions (``O`` -> ``I-LOC``), unless the
            training data itself has them.
        val_fraction: sentences held out for validation when no --dev file is given.
        batch_size: sentences per step (batched by length).
        trainer: optimisation options: early stopping on validation entity F1 and the learning rate halved on its
            plateaus, neither while it is still 0 nor before 1,000 updates (a small corpus learns at the full
            rate first).
    """

    token_column: int = 0
    tag_column: int = -1
    separator: str | None = None
    lowercase: bool = True
    digits: bool = True
    min_freq: int = 1
    encoding: str = "utf-8"
    embedding_dim: int = 100
    embeddings: str | None = None
    embeddings_vocab: int = 100_000
    dropout: float = 0.5
    word_dropout: float = 0.05
    casing_dim: int = 8
    char: CharConfig | None = field(default_factory=CharConfig)
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=200, bidirectional=True))
    crf: bool = True
    constrain: bool = True
    val_fraction: float = 0.1
    batch_size: int = 32
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None,
            max_epochs=50,
            min_steps=1000,
            lr=2e-3,
            early_stopping=5,
            monitor="val_f1",
            mode="max",
            early_stopping_floor=0.0,
            schedule="plateau",
            plateau_waits=True,
        )
    )


def read_sentences(path: str | Path, cfg: TagConfig, *, tags_required: bool = True) -> list[Sentence]:
    """CoNLL sentences with the token and tag columns of ``cfg``."""
    return read_conll(
        path,
        tag_column=cfg.tag_column,
        token_column=cfg.token_column,
        separator=cfg.separator,
        encoding=cfg.encoding,
        tags_required=tags_required,
    )


def _chars(text: str) -> dict[str, Any]:
    """``--chars cnn|lstm|none``."""
    kind = text.strip().lower()
    if kind in ("none", "off", "no"):
        return {"char": None}
    if kind not in ("cnn", "lstm"):
        raise ValueError(f"--chars: expected cnn, lstm or none, got {text!r}")
    return {"char.kind": kind}


class Tagger(Task):
    """A trained tagger: ``predict`` tags for token lists, ``evaluate`` entity F1 (seqeval) on CoNLL data."""

    name = "tag"
    Config = TagConfig
    summary = "Tag tokens (NER, chunking): words, casing and characters -> BiLSTM -> CRF; entity F1 with seqeval."
    example = "rnnkit train tag --data train.conll --dev valid.conll --out runs/ner"
    outputs = ("predictions.conll",)
    flags = (
        Flag("data", "--data", "CoNLL training file", Path, required=True),
        Flag("dev", "--dev", "CoNLL validation file", Path),
        Flag("test", "--test", "CoNLL test file", Path),
        Flag("crf", "--crf/--no-crf", "decode with a linear-chain CRF", bool, key="crf"),
        Flag("chars", "--chars", "character features of each word: cnn, lstm or none", key="char.kind", parse=_chars),
        Flag(
            "embeddings",
            "--embeddings",
            "pretrained word vectors, word2vec/GloVe text format (.gz allowed); default: learned from scratch",
            key="embeddings",
        ),
        Flag(
            "word_dropout",
            "--word-dropout",
            "fraction of words replaced by <unk> in training",
            float,
            key="word_dropout",
        ),
        Flag("tag_column", "--tag-column", "column of the tag (-1: last)", int, key="tag_column"),
        Flag("encoding", "--encoding", "text encoding", key="encoding"),
    )

    def __init__(
        self, cfg: TagConfig, model: ManyToMany, vocab: Vocab, tags: list[str], chars: CharVocab | None = None
    ) -> None:
        super().__init__(cfg, model)
        self.vocab, self.tags, self.chars = vocab, tags, chars
        inp = model.cfg.input
        if inp.char is not None and chars is None:
            raise ValueError("Tagger: the model reads characters; give the character vocabulary (chars=)")
        self.encoder = WordEncoder(
            vocab, cfg.lowercase, cfg.digits, chars if inp.char is not None else None, casing=inp.casing_classes > 0
        )

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: TagConfig, source: Any) -> list[Sentence]:
        return read_sentences(source, cfg)

    @classmethod
    def build(cls, cfg: TagConfig, train: list[Sentence]) -> Tagger:
        norm = functools.partial(normalise, lowercase=cfg.lowercase, digits=cfg.digits)
        vocab = Vocab.build(([norm(t) for t in s.tokens] for s in train), cfg.min_freq)
        vectors = None
        if cfg.embeddings:
            vocab, vectors = extend_vocab(vocab, cfg.embeddings, norm, cfg.embeddings_vocab)
            cfg = replace(cfg, embedding_dim=vectors.dim)  # the saved config builds the same model
        tags = sorted({t for s in train for t in s.tags})
        chars = CharVocab.build(t for s in train for t in s.tokens) if cfg.char is not None else None
        model = cls.build_model(
            cfg,
            len(vocab),
            len(tags),
            n_chars=len(chars) if chars else 0,
            casing=cfg.casing_dim > 0,
            tags=tags,
            train=train,
        )
        if vectors is not None:
            load_vectors(model.input.embedding, vocab.itos, vectors)  # type: ignore[arg-type]
        return cls(cfg, model, vocab, tags, chars)

    @staticmethod
    def build_model(
        cfg: TagConfig,
        vocab_size: int,
        n_tags: int,
        *,
        n_chars: int = 0,
        casing: bool = False,
        tags: list[str] | None = None,
        train: list[Sentence] | None = None,
    ) -> ManyToMany:
        """The network: words (``vocab_size``), [casing], [``n_chars`` characters] -> rnn -> ``n_tags`` scores [-> CRF,
        constrained to the chunk scheme of ``tags`` unless the ``train`` sentences break it]."""
        char = replace(cfg.char, vocab_size=n_chars) if cfg.char is not None and n_chars else None
        inp = InputConfig(
            vocab_size=vocab_size,
            embedding_dim=cfg.embedding_dim,
            dropout=cfg.dropout,
            word_dropout=cfg.word_dropout,
            casing_classes=len(CASINGS) if casing and cfg.casing_dim else 0,
            casing_dim=cfg.casing_dim if casing else 0,
            char=char,
        )
        head = HeadConfig(num_classes=n_tags, dropout=cfg.dropout)
        model = ManyToMany(ManyToManyConfig(inp, cfg.rnn, head, crf=cfg.crf))
        if model.crf is not None and cfg.constrain and tags is not None:
            allowed = scheme_constraints(tags)
            if allowed is not None and (train is None or _obeys(train, tags, allowed)):
                model.crf.constrain(*allowed)
        return model

    def loader(self, examples: list[Sentence], *, train: bool) -> Any:
        return self._loader(self._dataset(examples), shuffle=train)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, lengths, y, _ = batch
        out, _ = model(x, lengths=lengths)
        return unwrap(model).loss(out, y, lengths)

    @torch.no_grad()
    def score(self, loader: Any) -> dict[str, float]:
        self.model.eval()
        gold, pred, total, count = [], [], 0.0, 0
        for x, lengths, y, _ in self.batches(loader):
            scores, _ = self.model(x, lengths=lengths)  # one forward pass for both the loss and the decoding
            total += float(self.model.loss(scores, y, lengths)) * len(x)
            count += len(x)
            best = self.model.decode_scores(scores, lengths)
            for b, n in enumerate(lengths.tolist()):
                gold.append([self.tags[i] for i in y[b, :n].tolist()])
                pred.append([self.tags[i] for i in best[b, :n].tolist()])
        return {"loss": total / max(count, 1), **entity_scores(gold, pred)}

    def report_part(self, examples: list[Sentence], out: Path) -> dict[str, Any]:
        tokens = [s.tokens for s in examples]
        (out / "predictions.conll").write_text(self.to_conll(tokens, self.predict(tokens), [s.tags for s in examples]))
        return self.evaluate(examples)

    def baselines(self, train: list[Sentence], examples: list[Sentence]) -> dict[str, float]:
        """Entity F1 of tagging each word with its most frequent training tag (unseen words: the commonest tag)."""
        pred = most_frequent_tags([(s.tokens, s.tags) for s in train], [s.tokens for s in examples])
        return {"most_frequent_tag_f1": entity_scores([s.tags for s in examples], pred)["f1"]}

    def artifacts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"vocab": self.vocab.to_json(), "tags": self.tags}
        if self.encoder.chars is not None:
            out["chars"] = self.encoder.chars.to_json()
        out["features"] = {"casing": self.encoder.casing, "digits": self.encoder.digits}
        return out

    @classmethod
    def from_artifacts(cls, cfg: TagConfig, artifacts: dict[str, Any]) -> Tagger:
        vocab, tags = Vocab.from_json(artifacts["vocab"]), list(artifacts["tags"])
        chars = CharVocab.from_json(artifacts["chars"]) if "chars" in artifacts else None
        features = artifacts.get("features", {"casing": False, "digits": False})  # runs saved before the features
        cfg = replace(cfg, digits=bool(features["digits"]))
        model = cls.build_model(
            cfg, len(vocab), len(tags), n_chars=len(chars) if chars else 0, casing=bool(features["casing"]), tags=tags
        )
        return cls(cfg, model, vocab, tags, chars)

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the sentences to tag (CoNLL, or plain text with --text)")
        sentences = self.read_tokens(inputs.data, "text" if inputs.text else "conll")
        return self.to_conll(sentences, self.predict(sentences))

    # ---- inference ---------------------------------------------------------------------------------------------
    def _norm(self, tokens: list[str]) -> list[str]:
        """Tokens as the word vocabulary knows them (lowercased, digits as 0, as configured)."""
        return [normalise(t, self.encoder.lowercase, self.encoder.digits) for t in tokens]

    def encode(self, tokens: list[str]) -> list[int] | Tensor:
        """What the model reads of one sentence: word ids ``[T]``, or ``(T, F)`` ints with the casing and character
        columns (see :mod:`rnnkit.data.word_features`)."""
        return self.encoder.encode(tokens)

    def _dataset(self, sentences: list[Sentence]) -> list[tuple[Any, list[int]]]:
        index = {t: i for i, t in enumerate(self.tags)}
        unknown = sorted({t for s in sentences for t in s.tags} - set(index))
        if unknown:
            raise ValueError(f"tags {unknown[:5]} were not seen in training (known: {self.tags})")
        return [(self.encode(s.tokens), [index[t] for t in s.tags]) for s in sentences]

    def _loader(self, data: list, shuffle: bool) -> Any:
        return bucket_loader(data, self.cfg.batch_size, shuffle=shuffle, seed=self.cfg.trainer.seed, collate=_collate)

    def evaluate(self, sentences: list[Sentence] | str | Path) -> dict[str, float]:
        """Entity-level precision/recall/F1 (seqeval), token accuracy and the loss."""
        if isinstance(sentences, (str, Path)):
            sentences = read_sentences(sentences, self.cfg)
        return self.score(self.loader(sentences, train=False))

    @torch.no_grad()
    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each token list."""
        self.model.eval()
        data = [(self.encode(toks or ["<unk>"]), [i]) for i, toks in enumerate(sentences)]
        out: list[list[str]] = [[] for _ in sentences]
        for x, lengths, idx, _ in self.batches(self._loader(data, False)):
            best = self.model.decode(x, lengths)
            for b, n in enumerate(lengths.tolist()):
                out[int(idx[b, 0])] = [self.tags[i] for i in best[b, :n].tolist()]
        return [tags[: len(toks)] for tags, toks in zip(out, sentences)]

    @staticmethod
    def to_conll(sentences: list[list[str]], tags: list[list[str]], gold: list[list[str]] | None = None) -> str:
        """CoNLL text: ``token [gold] predicted`` per line, tab-separated, a blank line between sentences."""
        blocks = []
        for i, (toks, pred) in enumerate(zip(sentences, tags)):
            cols = [toks, gold[i], pred] if gold is not None else [toks, pred]
            blocks.append("\n".join("\t".join(row) for row in zip(*cols)))
        return "\n\n".join(blocks) + "\n"

    def read_tokens(self, path: str | Path, fmt: str = "conll") -> list[list[str]]:
        """Sentences to tag: CoNLL (``fmt="conll"``: the token column) or plain text (``fmt="text"``: one
        whitespace-tokenised sentence per line). Plain text read as CoNLL fails with a hint to say so."""
        if fmt == "conll":
            try:
                sentences = read_sentences(path, self.cfg, tags_required=False)
            except ValueError as exc:
                raise ValueError(
                    f"{exc}; if the file is plain text (one sentence per line), pass {option('text')}"
                ) from None
            if _looks_like_plain_text(path, self.cfg.encoding):
                raise ValueError(
                    f"{path} looks like plain text (one sentence per line), not CoNLL (one token per line); "
                    f"pass {option('text')}"
                )
            return [s.tokens for s in sentences]
        if fmt == "text":
            return [line.split() for line in read_lines(path, self.cfg.encoding)]
        raise ValueError(f"format must be 'conll' or 'text', got {fmt!r}")


def _looks_like_plain_text(path: str | Path, encoding: str) -> bool:
    """A text file of sentences (one per line) rather than CoNLL (one token per line): no blank line between
    sentences, several words per line, and the last words do not look like tags."""
    lines = read_lines(path, encoding, skip_empty=False)
    if any(not line.strip() for line in lines[:-1]) or max(len(line.split()) for line in lines) < 2:
        return False
    last = [line.split()[-1] for line in lines if line.strip()]
    tag_like = any(t == "O" or t[:2] in ("B-", "I-", "E-", "S-") for t in last)
    return len(last) == 1 or (len(set(last)) == len(last) and not tag_like)


def _collate(batch: list[tuple[Any, list[int]]]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x (B, T[, F]), lengths, y (B, T), lengths)`` from (encoded sentence, tag ids) pairs."""
    x, lengths = pad_words([b[0] for b in batch])
    y, y_lengths = pad_sequences([b[1] for b in batch])
    return x, lengths, y, y_lengths


def _obeys(train: list[Sentence], tags: list[str], allowed: tuple[Tensor, Tensor, Tensor]) -> bool:
    """Whether every training sentence follows the transitions ``allowed`` (else the data uses another scheme,
    e.g. IOB1, and the CRF must stay free)."""
    index = {t: i for i, t in enumerate(tags)}
    trans, start, end = allowed
    for s in train:
        ids = [index[t] for t in s.tags]
        if not ids:
            continue
        if not start[ids[0]] or not end[ids[-1]] or any(not trans[a, b] for a, b in itertools.pairwise(ids)):
            return False
    return True
