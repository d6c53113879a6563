"""Sequence tagging (NER, chunking, POS): a many-to-many RNN with an optional CRF, scored by entity-level F1."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.readers import Sentence, read_conll, read_lines
from ..data.text import Vocab
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import entity_scores
from ..topologies.base import RNNConfig
from ..topologies.many_to_many import ManyToMany, ManyToManyConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Task, bucket_loader, prepare_out, set_seed, write_json


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
        default_factory=lambda: TrainerConfig(epochs=10, lr=2e-3, early_stopping=3, monitor="val_f1", mode="max")
    )


def read_sentences(path: str | Path, cfg: TagConfig) -> list[Sentence]:
    """CoNLL sentences with the token and tag columns of ``cfg``."""
    return read_conll(
        path, tag_column=cfg.tag_column, token_column=cfg.token_column, separator=cfg.separator, encoding=cfg.encoding
    )


class Tagger(Task):
    """A trained tagger: ``predict`` tags for token lists, ``evaluate`` entity F1 (seqeval) on CoNLL data."""

    name = "tag"
    Config = TagConfig

    def __init__(self, cfg: TagConfig, model: ManyToMany, vocab: Vocab, tags: list[str]) -> None:
        super().__init__(cfg, model)
        self.vocab, self.tags = vocab, tags

    @staticmethod
    def build_model(cfg: TagConfig, vocab_size: int, n_tags: int) -> ManyToMany:
        inp = InputConfig(vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout)
        head = HeadConfig(num_classes=n_tags, dropout=cfg.dropout)
        return ManyToMany(ManyToManyConfig(inp, cfg.rnn, head, crf=cfg.crf))

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json(), "tags": self.tags}

    @classmethod
    def from_artifacts(cls, cfg: TagConfig, artifacts: dict[str, Any]) -> Tagger:
        vocab = Vocab.from_json(artifacts["vocab"])
        return cls(cfg, cls.build_model(cfg, len(vocab), len(artifacts["tags"])), vocab, list(artifacts["tags"]))

    def _norm(self, tokens: list[str]) -> list[str]:
        return [t.lower() for t in tokens] if self.cfg.lowercase else tokens

    def _dataset(self, sentences: list[Sentence]) -> list[tuple[list[int], list[int]]]:
        index = {t: i for i, t in enumerate(self.tags)}
        unknown = sorted({t for s in sentences for t in s.tags} - set(index))
        if unknown:
            raise ValueError(f"tags {unknown[:5]} were not seen in training (known: {self.tags})")
        return [(self.vocab.encode(self._norm(s.tokens)), [index[t] for t in s.tags]) for s in sentences]

    def _loader(self, data: list, shuffle: bool, seed: int = 0) -> DataLoader:
        return bucket_loader(data, self.cfg.batch_size, shuffle=shuffle, seed=seed, sequences=(0, 1))

    @classmethod
    def train(
        cls,
        cfg: TagConfig,
        data: str | Path,
        out: str | Path,
        *,
        dev: str | Path | None = None,
        test: str | Path | None = None,
        overwrite: bool = False,
        resume: bool = False,
    ) -> tuple[Tagger, dict[str, Any]]:
        out = prepare_out(out, overwrite=overwrite, resume=resume)
        set_seed(cfg.trainer.seed)
        sentences = read_sentences(data, cfg)
        if dev is not None:
            val = read_sentences(dev, cfg)
        else:
            n = round(cfg.val_fraction * len(sentences))
            order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(cfg.trainer.seed)).tolist()
            val = [sentences[i] for i in order[:n]]
            sentences = [sentences[i] for i in order[n:]]
        norm = (lambda t: [w.lower() for w in t]) if cfg.lowercase else (lambda t: t)
        vocab = Vocab.build((norm(s.tokens) for s in sentences), cfg.min_freq)
        tags = sorted({t for s in sentences for t in s.tags})
        task = cls(cfg, cls.build_model(cfg, len(vocab), len(tags)), vocab, tags)
        val_loader = task._loader(task._dataset(val), False) if val else None

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, lengths, y, _ = batch
            out, _ = model(x, lengths=lengths)
            return unwrap(model).loss(out, y, lengths)

        def evaluate_fn(model: nn.Module, loader: Any) -> dict[str, float]:
            scores = task._scores(loader)
            return {"val_loss": scores.pop("loss"), **{f"val_{k}": v for k, v in scores.items()}}

        task.fit(
            task._loader(task._dataset(sentences), True, cfg.trainer.seed),
            val_loader,
            loss_fn,
            out,
            cfg.trainer,
            evaluate_fn=evaluate_fn,
            resume=resume,
        )
        metrics: dict[str, Any] = {}
        if val:
            metrics["val"] = task.evaluate(val)
        held_out = read_sentences(test, cfg) if test is not None else val
        if test is not None:
            metrics["test"] = task.evaluate(held_out)
        if held_out:
            tokens = [s.tokens for s in held_out]
            (out / "predictions.conll").write_text(
                task.to_conll(tokens, task.predict(tokens), [s.tags for s in held_out])
            )
        write_json(out / "metrics.json", metrics)
        return task, metrics

    @torch.no_grad()
    def _scores(self, loader: Any) -> dict[str, float]:
        self.model.eval()
        gold, pred, total, count = [], [], 0.0, 0
        for x, lengths, y, _ in loader:
            out, _ = self.model(x, lengths=lengths)
            total += float(self.model.loss(out, y, lengths)) * len(x)
            count += len(x)
            best = self.model.decode(x, lengths)
            for b, n in enumerate(lengths.tolist()):
                gold.append([self.tags[i] for i in y[b, :n].tolist()])
                pred.append([self.tags[i] for i in best[b, :n].tolist()])
        return {"loss": total / max(count, 1), **entity_scores(gold, pred)}

    def evaluate(self, sentences: list[Sentence] | str | Path) -> dict[str, float]:
        """Entity-level precision/recall/F1 (seqeval), token accuracy and the loss."""
        if isinstance(sentences, (str, Path)):
            sentences = read_sentences(sentences, self.cfg)
        return self._scores(self._loader(self._dataset(sentences), False))

    @torch.no_grad()
    def predict(self, sentences: list[list[str]]) -> list[list[str]]:
        """Tags for each token list."""
        self.model.eval()
        data = [(self.vocab.encode(self._norm(toks)) or [self.vocab.unk], [i]) for i, toks in enumerate(sentences)]
        out: list[list[str]] = [[] for _ in sentences]
        for x, lengths, idx, _ in self._loader(data, False):
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
        whitespace-tokenised sentence per line)."""
        if fmt == "conll":
            return [s.tokens for s in read_sentences(path, self.cfg)]
        if fmt == "text":
            return [line.split() for line in read_lines(path, self.cfg.encoding)]
        raise ValueError(f"format must be 'conll' or 'text', got {fmt!r}")
