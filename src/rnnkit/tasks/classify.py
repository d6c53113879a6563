"""Text classification (sentiment, topics): a many-to-one RNN over tokens, scored by accuracy and macro-F1."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.readers import read_labelled_csv, read_labelled_files, read_lines
from ..data.text import Vocab, make_tokenizer, tokenizer_from_json
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import accuracy, macro_f1
from ..topologies.base import RNNConfig
from ..topologies.many_to_one import ManyToOne, ManyToOneConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Task, bucket_loader, prepare_out, set_seed, write_json


@dataclass
class ClassifyConfig:
    """Text classification.

    Attributes:
        text_column, label_column: columns of a CSV/Parquet input (ignored for one-file-per-class input).
        level: tokens: ``word``, ``split`` (whitespace; for pre-tokenised text), ``char`` or ``subword``.
        lowercase: lowercase before tokenising (word level).
        min_freq, max_vocab: vocabulary limits (rarer tokens become ``<unk>``).
        max_length: keep at most this many tokens of each text.
        encoding: text encoding of the input files (the MR files are ``latin-1``).
        embedding_dim, dropout: token embedding size and dropout on embeddings and before the head.
        rnn: the recurrent core; pooling: ``last``, ``mean``, ``max`` or ``attention``.
        val_fraction, test_fraction: random held-out parts when no --dev / --test file is given.
        batch_size: texts per step (batched by length).
        trainer: optimisation options.
    """

    text_column: str = "text"
    label_column: str = "label"
    level: str = "word"
    lowercase: bool = True
    min_freq: int = 1
    max_vocab: int | None = 30000
    max_length: int = 200
    encoding: str = "utf-8"
    embedding_dim: int = 128
    dropout: float = 0.3
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=128, bidirectional=True))
    pooling: str = "max"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    batch_size: int = 64
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(epochs=8, lr=2e-3, early_stopping=3, monitor="val_accuracy", mode="max")
    )


def read_examples(source: str | Path | list[str | Path], cfg: ClassifyConfig) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from a CSV/Parquet file (columns) or from files with one text per line per class."""
    if isinstance(source, (list, tuple)):
        return read_labelled_files(list(source), cfg.encoding)
    return read_labelled_csv(source, cfg.text_column, cfg.label_column, cfg.encoding)


class Classifier(Task):
    """A trained text classifier: ``predict`` labels (and probabilities), ``evaluate`` accuracy and macro-F1."""

    name = "classify"
    Config = ClassifyConfig

    def __init__(self, cfg: ClassifyConfig, model: ManyToOne, vocab: Vocab, tokenizer: Any, labels: list[str]) -> None:
        super().__init__(cfg, model)
        self.vocab, self.tokenizer, self.labels = vocab, tokenizer, labels

    @staticmethod
    def build_model(cfg: ClassifyConfig, vocab_size: int, n_labels: int) -> ManyToOne:
        inp = InputConfig(vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout)
        head = HeadConfig(num_classes=n_labels, dropout=cfg.dropout)
        return ManyToOne(ManyToOneConfig(inp, cfg.rnn, cfg.pooling, head))

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json(), "tokenizer": self.tokenizer.to_json(), "labels": self.labels}

    @classmethod
    def from_artifacts(cls, cfg: ClassifyConfig, artifacts: dict[str, Any]) -> Classifier:
        vocab = Vocab.from_json(artifacts["vocab"])
        model = cls.build_model(cfg, len(vocab), len(artifacts["labels"]))
        return cls(cfg, model, vocab, tokenizer_from_json(artifacts["tokenizer"]), list(artifacts["labels"]))

    def encode(self, texts: list[str]) -> list[list[int]]:
        ids = [self.vocab.encode(self.tokenizer.tokenize(t))[: self.cfg.max_length] for t in texts]
        return [i or [self.vocab.unk] for i in ids]  # an empty text still gets one step

    def _dataset(self, texts: list[str], labels: list[str]) -> list[tuple[list[int], int]]:
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} were not seen in training (known: {self.labels})")
        return [(ids, index[y]) for ids, y in zip(self.encode(texts), labels)]

    def _loader(self, data: list, shuffle: bool, seed: int = 0) -> DataLoader:
        return bucket_loader(data, self.cfg.batch_size, shuffle=shuffle, seed=seed, pad=self.vocab.pad)

    # ---- training ------------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        cfg: ClassifyConfig,
        data: str | Path | list,
        out: str | Path,
        *,
        dev: Any = None,
        test: Any = None,
        overwrite: bool = False,
        resume: bool = False,
    ) -> tuple[Classifier, dict[str, Any]]:
        out = prepare_out(out, overwrite=overwrite, resume=resume)
        set_seed(cfg.trainer.seed)
        texts, labels = read_examples(data, cfg)
        order = np.random.default_rng(cfg.trainer.seed).permutation(len(texts))
        parts = {"train": order}
        n_val = 0 if dev is not None else round(cfg.val_fraction * len(texts))
        n_test = 0 if test is not None else round(cfg.test_fraction * len(texts))
        if n_val or n_test:
            parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
        split = {k: ([texts[i] for i in v], [labels[i] for i in v]) for k, v in parts.items()}
        if dev is not None:
            split["val"] = read_examples(dev, cfg)
        if test is not None:
            split["test"] = read_examples(test, cfg)
        train_texts, train_labels = split["train"]
        if len(set(train_labels)) < 2:
            raise ValueError(f"the training data has {len(set(train_labels))} label(s); a classifier needs at least 2")
        tokenizer = make_tokenizer(cfg.level, lowercase=cfg.lowercase, texts=train_texts)
        vocab = Vocab.build((tokenizer.tokenize(t) for t in train_texts), cfg.min_freq, cfg.max_vocab)
        names = sorted(set(train_labels))
        task = cls(cfg, cls.build_model(cfg, len(vocab), len(names)), vocab, tokenizer, names)
        train_set = task._dataset(*split["train"])
        val = split.get("val")
        val_loader = task._loader(task._dataset(*val), False) if val and val[0] else None

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, lengths, y = batch
            return unwrap(model).loss(model(x, lengths), y)

        def evaluate_fn(model: nn.Module, loader: Any) -> dict[str, float]:
            m = task._scores(loader)
            return {"val_loss": m["loss"], "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}

        task.fit(
            task._loader(train_set, True, cfg.trainer.seed),
            val_loader,
            loss_fn,
            out,
            cfg.trainer,
            evaluate_fn=evaluate_fn,
            resume=resume,
        )
        metrics: dict[str, Any] = {}
        for part in ("val", "test"):
            if split.get(part) and split[part][0]:
                metrics[part] = task.evaluate(*split[part])
                task.prediction_table(*split[part]).to_csv(out / "predictions.csv", index=False)  # test wins
        write_json(out / "metrics.json", metrics)
        return task, metrics

    # ---- inference -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _scores(self, loader: Any) -> dict[str, float]:
        self.model.eval()
        total, gold, pred = 0.0, [], []
        for x, lengths, y in loader:
            logits = self.model(x, lengths)
            total += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            gold += y.tolist()
            pred += logits.argmax(-1).tolist()
        return {
            "loss": total / max(len(gold), 1),
            "accuracy": accuracy(gold, pred),
            "macro_f1": macro_f1(gold, pred),
            "n": len(gold),
        }

    def evaluate(self, texts: list[str], labels: list[str]) -> dict[str, float]:
        """Loss, accuracy and macro-F1 on labelled texts."""
        return self._scores(self._loader(self._dataset(texts, labels), False))

    @torch.no_grad()
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """``(N, classes)`` probabilities, in ``self.labels`` order."""
        self.model.eval()
        out = np.zeros((len(texts), len(self.labels)))
        data = [(ids, i) for i, ids in enumerate(self.encode(texts))]
        for x, lengths, idx in self._loader(data, False):
            out[idx.numpy()] = torch.softmax(self.model(x, lengths), -1).numpy()
        return out

    def predict(self, texts: list[str]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(1)]

    def prediction_table(self, texts: list[str], labels: list[str] | None = None) -> pd.DataFrame:
        """Texts, (gold labels,) predicted labels and the probability of each label."""
        probs = self.predict_proba(texts)
        table = pd.DataFrame({"text": texts})
        if labels is not None:
            table["gold"] = labels
        table["label"] = [self.labels[i] for i in probs.argmax(1)]
        for j, name in enumerate(self.labels):
            table[f"p_{name}"] = probs[:, j]
        return table

    @staticmethod
    def read_texts(path: str | Path, column: str, encoding: str) -> list[str]:
        """Texts to classify: a column of a CSV/Parquet file, or one text per line of a plain file."""
        path = Path(path)
        if path.suffix.lower() in (".csv", ".parquet", ".pq"):
            from ..data.timeseries import read_table

            frame = read_table(path, encoding=encoding)
            if column not in frame.columns:
                raise ValueError(f"{path}: unknown column {column!r}; the file has {list(frame.columns)}")
            return frame[column].astype(str).tolist()
        return read_lines(path, encoding)
