"""Sequence tagging (NER, chunking, POS): a many-to-many RNN with an optional CRF, scored by entity-level F1."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.readers import Sentence, read_conll, read_lines
from ..data.text import Vocab
from ..errors import option
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import entity_scores
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
        lowercase: lowercase tokens before looking them up.
        min_freq: tokens seen fewer times in training become ``<unk>``.
        encoding: text encoding of the files.
        embedding_dim, dropout: token embedding size and dropout.
        rnn: the recurrent core (bidirectional by default: a tag depends on both sides).
        crf: decode with a linear-chain CRF (learns which tag may follow which).
        val_fraction: sentences held out for validation when no --dev file is given.
        batch_size: sentences per step (batched by length).
        trainer: optimisation options (early stopping on validation entity F1).
    """

    token_column: int = 0
    tag_column: int = -1
    separator: str | None = None
    lowercase: bool = False
    min_freq: int = 1
    encoding: str = "utf-8"
    embedding_dim: int = 100
    dropout: float = 0.5
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=128, bidirectional=True))
    crf: bool = False
    val_fraction: float = 0.1
    batch_size: int = 32
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None, max_epochs=50, min_steps=1000, lr=2e-3, early_stopping=5, monitor="val_f1", mode="max"
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


class Tagger(Task):
    """A trained tagger: ``predict`` tags for token lists, ``evaluate`` entity F1 (seqeval) on CoNLL data."""

    name = "tag"
    Config = TagConfig
    summary = "Tag tokens (NER, chunking): bidirectional many-to-many RNN, optional CRF; entity F1 with seqeval."
    example = "rnnkit train tag --data train.conll --dev valid.conll --crf --out runs/ner"
    outputs = ("predictions.conll",)
    flags = (
        Flag("data", "--data", "CoNLL training file", Path, required=True),
        Flag("dev", "--dev", "CoNLL validation file; default: a held-out part", Path),
        Flag("test", "--test", "CoNLL test file", Path),
        Flag("crf", "--crf/--no-crf", "decode with a linear-chain CRF", bool, key="crf"),
        Flag("tag_column", "--tag-column", "column of the tag (-1: last)", int, key="tag_column"),
        Flag("encoding", "--encoding", "text encoding", key="encoding"),
    )

    def __init__(self, cfg: TagConfig, model: ManyToMany, vocab: Vocab, tags: list[str]) -> None:
        super().__init__(cfg, model)
        self.vocab, self.tags = vocab, tags

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: TagConfig, source: Any) -> list[Sentence]:
        return read_sentences(source, cfg)

    @classmethod
    def build(cls, cfg: TagConfig, train: list[Sentence]) -> Tagger:
        norm = (lambda t: [w.lower() for w in t]) if cfg.lowercase else (lambda t: t)
        vocab = Vocab.build((norm(s.tokens) for s in train), cfg.min_freq)
        tags = sorted({t for s in train for t in s.tags})
        return cls(cfg, cls.build_model(cfg, len(vocab), len(tags)), vocab, tags)

    @staticmethod
    def build_model(cfg: TagConfig, vocab_size: int, n_tags: int) -> ManyToMany:
        inp = InputConfig(vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout)
        head = HeadConfig(num_classes=n_tags, dropout=cfg.dropout)
        return ManyToMany(ManyToManyConfig(inp, cfg.rnn, head, crf=cfg.crf))

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

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json(), "tags": self.tags}

    @classmethod
    def from_artifacts(cls, cfg: TagConfig, artifacts: dict[str, Any]) -> Tagger:
        vocab = Vocab.from_json(artifacts["vocab"])
        return cls(cfg, cls.build_model(cfg, len(vocab), len(artifacts["tags"])), vocab, list(artifacts["tags"]))

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the sentences to tag (CoNLL, or plain text with --text)")
        sentences = self.read_tokens(inputs.data, "text" if inputs.text else "conll")
        return self.to_conll(sentences, self.predict(sentences))

    # ---- inference ---------------------------------------------------------------------------------------------
    def _norm(self, tokens: list[str]) -> list[str]:
        return [t.lower() for t in tokens] if self.cfg.lowercase else tokens

    def _dataset(self, sentences: list[Sentence]) -> list[tuple[list[int], list[int]]]:
        index = {t: i for i, t in enumerate(self.tags)}
        unknown = sorted({t for s in sentences for t in s.tags} - set(index))
        if unknown:
            raise ValueError(f"tags {unknown[:5]} were not seen in training (known: {self.tags})")
        return [(self.vocab.encode(self._norm(s.tokens)), [index[t] for t in s.tags]) for s in sentences]

    def _loader(self, data: list, shuffle: bool) -> Any:
        return bucket_loader(data, self.cfg.batch_size, shuffle=shuffle, seed=self.cfg.trainer.seed, sequences=(0, 1))

    def evaluate(self, sentences: list[Sentence] | str | Path) -> dict[str, float]:
        """Entity-level precision/recall/F1 (seqeval), token accuracy and the loss."""
        if isinstance(sentences, (str, Path)):
            sentences = read_sentences(sentences, self.cfg)
        return self.score(self.loader(sentences, train=False))

    @torch.no_grad()
    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each token list."""
        self.model.eval()
        data = [(self.vocab.encode(self._norm(toks)) or [self.vocab.unk], [i]) for i, toks in enumerate(sentences)]
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
