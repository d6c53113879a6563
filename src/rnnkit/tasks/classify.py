"""Text classification (sentiment, topics): a many-to-one RNN over tokens, scored by accuracy and macro-F1."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..data.embeddings import extend_vocab, load_vectors
from ..data.readers import (
    looks_like_label_lines,
    read_label_lines,
    read_labelled_csv,
    read_labelled_files,
    read_lines,
)
from ..data.text import SPECIALS, Vocab, make_tokenizer, tokenizer_from_json
from ..errors import option
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..layers.ngram_linear import fit_linear
from ..layers.ngrams import NgramConfig
from ..metrics import accuracy, macro_f1
from ..topologies.base import RNNConfig
from ..topologies.many_to_one import ManyToOne, ManyToOneConfig
from ..training import distributed as D
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Inputs, Task, bucket_loader
from .flags import Flag

TABLES = (".csv", ".parquet", ".pq", ".tsv")
#: the n-gram bag's shares compared on validation data (0: the network alone; then 1/20 to 20 times its votes)
MIXES = (0.0, *(round(float(m), 4) for m in np.geomspace(0.05, 20.0, 27)))
#: the temperatures of the scores tried with each share (a trained network is often overconfident)
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.01, 3.0, 30))
#: the temperatures the trained classifier may keep: 1 (its scores as they are) unless one of those calibrates better
KEPT_TEMPERATURES = (1.0, *TEMPERATURES)


def calibrated_loss(logits: Tensor, y: Tensor, temperatures: tuple[float, ...] = TEMPERATURES) -> tuple[float, float]:
    """``(cross-entropy, temperature)``: the lowest mean cross-entropy of ``t * logits (N, K)`` against ``y (N,)``
    over the ``temperatures`` ``t``, and that ``t``."""
    t = torch.tensor(temperatures, dtype=logits.dtype)
    z = t[:, None, None] * logits  # (T, N, K)
    losses = (torch.logsumexp(z, -1) - z.gather(-1, y[None, :, None].expand(len(t), -1, 1))[..., 0]).mean(1)  # (T,)
    i = int(losses.argmin())
    return float(losses[i]), temperatures[i]


def choose_share(net: Tensor, bag: Tensor, y: Tensor) -> float:
    """The share ``m`` of :data:`MIXES` whose scores ``net + m * bag`` (``(N, K)`` each) predict the labels ``y``
    best in cross-entropy once calibrated (:func:`calibrated_loss`): a smooth criterion, which on a few hundred
    validation texts is steadier than their accuracy, and judges the share on calibrated probabilities rather
    than on the network's overconfident ones (the mix kept is then calibrated: :meth:`Classifier.calibrate`)."""
    return min(MIXES, key=lambda m: calibrated_loss(net + m * bag, y)[0])


def choose_shares(net: Tensor, words: Tensor, chars: Tensor, y: Tensor, *more: Tensor) -> tuple[float, ...]:
    """:func:`choose_share` for two (or more) bags at once (``(N, K)`` each: the words' votes, the character
    n-grams', the logistic regression's scores), each share one of every other value of :data:`MIXES`."""
    grid, parts = MIXES[::2], torch.stack([words, chars, *more])  # (P, N, K)
    shares = torch.tensor(list(itertools.product(grid, repeat=len(parts))), dtype=parts.dtype)  # (S, P)
    losses = [calibrated_loss(net + torch.einsum("p,pnk->nk", m, parts), y)[0] for m in shares]
    return tuple(float(v) for v in shares[int(np.argmin(losses))].tolist())


@dataclass
class ClassifyConfig:
    """Text classification.

    Attributes:
        text_column, label_column: columns of a CSV/Parquet input (ignored for one-file-per-class input and for
            ``label text`` lines).
        level: tokens: ``word``, ``split`` (whitespace; for pre-tokenised text), ``char`` or ``subword``.
        lowercase: lowercase before tokenising (word level).
        min_freq, max_vocab: vocabulary limits (rarer tokens become ``<unk>``).
        max_length: keep at most this many tokens of each text.
        encoding: text encoding of the input files (the MR files are ``latin-1``).
        embedding_dim, dropout: token embedding size (with ``embeddings``: the file's) and dropout on embeddings and
            before the head.
        embeddings: a word2vec/GloVe text file of pretrained word vectors (None: learned from scratch).
        embeddings_vocab: the most words of that file added to the vocabulary besides the training words.
        word_dropout: in training, this fraction of tokens is replaced by ``<unk>``.
        rnn: the recurrent core; pooling: ``last``, ``mean``, ``max`` or ``attention``.
        ngrams: add a naive-Bayes bag of word n-grams and the words' character n-grams to the network's scores
            (counted on the training texts; with ``ngrams.linear`` also a logistic regression over them, NBSVM),
            mixed in with the shares whose calibrated scores best predict the validation texts
            (:func:`choose_shares`; 0 if a part does not help), then counted (and fitted) again over training and
            validation texts (``ngrams.refit``); None: the network alone. Either way the scores are then
            calibrated on the validation texts (:meth:`Classifier.calibrate`).
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
    embeddings: str | None = None
    embeddings_vocab: int = 100_000
    dropout: float = 0.3
    word_dropout: float = 0.0
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=128, bidirectional=True))
    pooling: str = "max"
    ngrams: NgramConfig | None = field(default_factory=NgramConfig)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    batch_size: int = 64
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None, max_epochs=30, min_steps=300, lr=2e-3, early_stopping=3, monitor="val_accuracy", mode="max"
        )
    )

    def __post_init__(self) -> None:
        for name in ("max_length", "embedding_dim", "batch_size", "min_freq"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClassifyConfig: {option(name)} must be >= 1, got {getattr(self, name)}")


def read_examples(source: str | Path | list[str | Path], cfg: ClassifyConfig) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` from a CSV/Parquet file (columns), from files with one text per line per class, or from
    a text file of ``label text`` lines (``__label__pos text`` as fastText, ``1 text`` as SST)."""
    if isinstance(source, (list, tuple)):
        return read_labelled_files(list(source), cfg.encoding)
    if Path(source).suffix.lower() not in TABLES and looks_like_label_lines(source, cfg.encoding):
        return read_label_lines(source, cfg.encoding)
    return read_labelled_csv(source, cfg.text_column, cfg.label_column, cfg.encoding)


Example = tuple[str, str]


class Classifier(Task):
    """A trained text classifier: ``predict`` labels (and probabilities), ``evaluate`` accuracy and macro-F1."""

    name = "classify"
    Config = ClassifyConfig
    summary = "Classify texts (sentiment, topics): bidirectional many-to-one RNN; accuracy and macro-F1."
    example = "rnnkit train classify --data reviews.csv --text review --label stars --out runs/reviews"
    outputs = ("predictions.csv",)
    flags = (
        Flag("data", "--data", "CSV/Parquet with a text and a label column, or 'label text' lines", Path),
        Flag(
            "files", "--files", "instead: one file per class, one text per line (label = suffix)", Path, multiple=True
        ),
        Flag("text", "--text", "text column", key="text_column"),
        Flag("label", "--label", "label column", key="label_column"),
        Flag("dev", "--dev", "validation file (same format)", Path),
        Flag("test", "--test", "test file (same format)", Path),
        Flag("level", "--level", "tokens: word, split, char or subword", key="level"),
        Flag("pooling", "--pooling", "last, mean, max or attention", key="pooling"),
        Flag("max_length", "--max-length", "tokens kept per text", int, key="max_length"),
        Flag(
            "embeddings",
            "--embeddings",
            "pretrained word vectors, word2vec/GloVe text format (.gz allowed); default: learned from scratch",
            key="embeddings",
        ),
        Flag("encoding", "--encoding", "text encoding, e.g. latin-1", key="encoding"),
    )

    def __init__(self, cfg: ClassifyConfig, model: ManyToOne, vocab: Vocab, tokenizer: Any, labels: list[str]) -> None:
        super().__init__(cfg, model)
        self.vocab, self.tokenizer, self.labels = vocab, tokenizer, labels
        self.val_metrics: dict[str, Any] | None = None  # the validation score before the bag counted those texts

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: ClassifyConfig, source: Any) -> list[Example]:
        return list(zip(*read_examples(source, cfg)))

    @classmethod
    def build(cls, cfg: ClassifyConfig, train: list[Example]) -> Classifier:
        texts = [t for t, _ in train]
        labels = sorted({y for _, y in train})
        if len(labels) < 2:
            raise ValueError(f"the training data has {len(labels)} label(s); a classifier needs at least 2")
        tokenizer = make_tokenizer(cfg.level, lowercase=cfg.lowercase, texts=texts)
        vocab = Vocab.build((tokenizer.tokenize(t) for t in texts), cfg.min_freq, cfg.max_vocab)
        vectors = None
        if cfg.embeddings:
            lower = cfg.lowercase and cfg.level in ("word", "split")
            vocab, vectors = extend_vocab(vocab, cfg.embeddings, str.lower if lower else str, cfg.embeddings_vocab)
            cfg = replace(cfg, embedding_dim=vectors.dim)  # the saved config builds the same model
        model = cls.build_model(cfg, len(vocab), len(labels))
        if vectors is not None:
            load_vectors(model.input.embedding, vocab.itos, vectors)  # type: ignore[arg-type]
        task = cls(cfg, model, vocab, tokenizer, labels)
        if model.ngrams is not None:
            model.ngrams.set_words(vocab.itos, len(SPECIALS))
            index = {name: i for i, name in enumerate(labels)}
            task.count_ngrams(task.encode(texts, unseen=True), [index[y] for _, y in train])
        return task

    @staticmethod
    def build_model(cfg: ClassifyConfig, vocab_size: int, n_labels: int) -> ManyToOne:
        inp = InputConfig(
            vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout, word_dropout=cfg.word_dropout
        )
        head = HeadConfig(num_classes=n_labels, dropout=cfg.dropout)
        return ManyToOne(ManyToOneConfig(inp, cfg.rnn, cfg.pooling, head, ngrams=cfg.ngrams))

    def loader(self, examples: list[Example], *, train: bool) -> Any:
        data = self._dataset([t for t, _ in examples], [y for _, y in examples])
        return bucket_loader(data, self.cfg.batch_size, shuffle=train, seed=self.cfg.trainer.seed, pad=self.vocab.pad)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, lengths, y = batch
        return unwrap(model).loss(model(x, lengths), y)

    @torch.no_grad()
    def score(self, loader: Any) -> dict[str, float]:
        self.model.eval()
        total, gold, pred = 0.0, [], []
        for x, lengths, y in self.batches(loader):
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

    def fit(self, train: Any, val: Any, out: Path, *, resume: bool = False) -> Any:
        """Train the network; then, with an n-gram bag, choose its share on the validation texts, calibrate the
        scores' temperature on them (:meth:`calibrate`; with ``ngrams.refit`` count the bag again over the training
        and validation texts) and save again."""
        state = super().fit(train, val, out, resume=resume)
        if val is None:
            return state
        chosen: dict[str, Any] = {}
        if self.model.ngrams is not None:
            self.training["ngrams"] = chosen = self.choose_mix(val)
        self.training["calibration"] = self.calibrate(val)
        if self.model.ngrams is not None and self.cfg.ngrams.refit:
            self.val_metrics = self.score(val)  # held out until now: what the report shows for val
            self.refit_ngrams([train.dataset, val.dataset])
            self.model.ngrams.scale_(*chosen["scales"])  # the counts are new; the chosen shares (and t) are not
            chosen["refit"] = "counted again over the training and validation texts"
        if D.is_main():
            self.save(out / "model")
        D.barrier()
        return state

    @torch.no_grad()
    def calibrate(self, loader: Any) -> dict[str, Any]:
        """Set the model's ``temperature`` (its scores' factor) to the one of :data:`KEPT_TEMPERATURES` whose
        probabilities predict ``loader``'s labels best (:func:`calibrated_loss`): a trained network is often
        overconfident, and a positive factor moves no argmax. Returns it with the cross-entropy before and after."""
        self.model.eval()
        self.model.temperature.fill_(1.0)
        scores, gold = [], []
        for x, lengths, y in self.batches(loader):
            scores.append(self.model(x, lengths))
            gold.append(y)
        z, y = torch.cat(scores).double(), torch.cat(gold)
        loss, t = calibrated_loss(z, y, KEPT_TEMPERATURES)
        self.model.temperature.fill_(t)
        before = float(nn.functional.cross_entropy(z, y))
        return {"temperature": t, "val_loss": before, "val_calibrated_loss": loss}

    @torch.no_grad()
    def refit_ngrams(self, parts: list[list[tuple[list[int], int]]]) -> None:
        """Count the n-gram bag over these encoded ``(ids, label index)`` examples (every process counts them all:
        a loader's ``dataset`` is the whole part, not a process's share)."""
        examples = [e for part in parts for e in part]
        self.count_ngrams([ids for ids, _ in examples], [y for _, y in examples])

    def count_ngrams(self, texts: list[list[int]], labels: list[int]) -> None:
        """Count the n-gram bag's votes over encoded texts and their label indices (and with ``ngrams.linear``, fit
        its logistic regression)."""
        self.model.ngrams.fit(texts, labels)
        if self.cfg.ngrams.linear is not None:
            fit_linear(self.model.ngrams, texts, labels, self.cfg.ngrams.linear)

    def report(self, out: Path, splits: Any) -> dict[str, Any]:
        metrics = super().report(out, splits)
        if self.val_metrics is not None and "val" in metrics:
            metrics["val"] = self.val_metrics  # the bag has now counted the validation texts: keep the held-out score
        return metrics

    @torch.no_grad()
    def choose_mix(self, loader: Any) -> dict[str, Any]:
        """Set the n-gram bag's share ``mix`` by :func:`choose_share` on ``loader``'s texts (with character
        n-grams: the shares of words and characters by :func:`choose_shares`, ``mix`` the larger and the bag's
        weights scaled by each share over it). Returns what was compared: the network alone, the bag alone and the
        mix (accuracy, calibrated cross-entropy) and the ``scales`` applied to the bag's two parts."""
        bag = self.model.ngrams
        self.model.eval()
        self.model.mix.fill_(0.0)
        self.model.temperature.fill_(1.0)  # the network's own scores (calibrate chooses the mix's temperature)
        net, parts, gold = [], [], []
        for x, lengths, y in self.batches(loader):
            net.append(self.model(x, lengths))
            parts.append(bag.parts(x, lengths))
            gold.append(y)
        a, p, y = torch.cat(net).double(), torch.cat(parts), torch.cat(gold)
        words, chars, more = p[:, 0], p[:, 1], list(p[:, 2:].unbind(1))  # more: the logistic regression's scores
        if self.cfg.ngrams.chars is None and not more:
            shares: tuple[float, ...] = (choose_share(a, words, y), 0.0)
        else:
            shares = choose_shares(a, words, chars, y, *more)
        mix = max(shares)
        scales = tuple(s / mix for s in shares) if mix > 0 else (1.0,) * len(shares)
        bag.scale_(*scales)
        self.model.mix.fill_(mix)
        b = sum(s * part for s, part in zip(scales, p.unbind(1)))
        acc = lambda logits: float((logits.argmax(1) == y).double().mean())  # noqa: E731
        return {
            "mix": mix,
            "shares": dict(zip(("words", "chars", "linear"), shares)),
            "scales": scales,
            "val_accuracy": acc(a + mix * b),
            "val_accuracy_network": acc(a),
            "val_accuracy_ngrams": acc(words + chars),
            **({"val_accuracy_linear": acc(more[0])} if more else {}),
            "val_calibrated_loss": calibrated_loss(a + mix * b, y)[0],
            "val_calibrated_loss_network": calibrated_loss(a, y)[0],
        }

    def report_part(self, examples: list[Example], out: Path) -> dict[str, Any]:
        texts, labels = [t for t, _ in examples], [y for _, y in examples]
        self.prediction_table(texts, labels).to_csv(out / "predictions.csv", index=False)
        return self.evaluate(texts, labels)

    def baselines(self, train: list[Example], examples: list[Example]) -> dict[str, float]:
        """Accuracy and macro F1 of always answering the commonest training label."""
        common = Counter(y for _, y in train).most_common(1)[0][0]
        gold = [y for _, y in examples]
        guess = [common] * len(gold)
        return {"majority_class_accuracy": accuracy(gold, guess), "majority_class_macro_f1": macro_f1(gold, guess)}

    def artifacts(self) -> dict[str, Any]:
        return {
            "vocab": self.vocab.to_json(),
            "tokenizer": self.tokenizer.to_json(),
            "labels": self.labels,
            "ngrams": self.model.ngrams is not None,
            "ngram_chars": self.model.ngrams is not None and self.cfg.ngrams.chars is not None,
            "ngram_unseen": self.model.ngrams is not None,
            "ngram_linear": self.model.ngrams is not None and self.cfg.ngrams.linear is not None,
        }

    @classmethod
    def from_artifacts(cls, cfg: ClassifyConfig, artifacts: dict[str, Any]) -> Classifier:
        vocab = Vocab.from_json(artifacts["vocab"])
        if not artifacts.get("ngrams", False):  # also runs saved before the bag existed
            cfg = replace(cfg, ngrams=None)
        elif cfg.ngrams is not None and not artifacts.get("ngram_chars", False):  # saved before character n-grams
            cfg = replace(cfg, ngrams=replace(cfg.ngrams, chars=None, unseen=0, linear=None))
        elif cfg.ngrams is not None and not artifacts.get("ngram_unseen", False):  # before unseen words' n-grams
            cfg = replace(cfg, ngrams=replace(cfg.ngrams, unseen=0, linear=None))
        elif cfg.ngrams is not None and not artifacts.get("ngram_linear", False):  # before the logistic regression
            cfg = replace(cfg, ngrams=replace(cfg.ngrams, linear=None))
        model = cls.build_model(cfg, len(vocab), len(artifacts["labels"]))
        if model.ngrams is not None:
            model.ngrams.set_words(vocab.itos, len(SPECIALS))
        return cls(cfg, model, vocab, tokenizer_from_json(artifacts["tokenizer"]), list(artifacts["labels"]))

    @classmethod
    def sources(cls, given: dict[str, Any]) -> tuple[Any, Any, Any]:
        data, files = given.get("data"), given.get("files")
        if data is not None and files:
            raise ValueError("give --data or --files, not both")
        if data is None and not files:
            raise ValueError("give --data (a CSV with text and label columns) or --files (one file per class)")
        return (data if data is not None else list(files)), given.get("dev"), given.get("test")

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        if inputs.data is None and not inputs.files:
            raise ValueError("give --data with the labelled data to evaluate on (or --files, one file per class)")
        return self.evaluate(*read_examples(inputs.data if inputs.data is not None else inputs.files, self.cfg))

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the texts to classify (CSV/Parquet column, or one text per line)")
        path, column = Path(inputs.data), inputs.column or self.cfg.text_column
        if path.suffix.lower() in TABLES:  # keep the user's columns, so the answers join back to their rows
            from ..data.timeseries import read_table

            frame = read_table(path, encoding=self.cfg.encoding)
            texts = self.read_texts(path, column, self.cfg.encoding)
            table = self.prediction_table(texts).drop(columns="text")
            return pd.concat([frame.reset_index(drop=True), table], axis=1).to_csv(index=False)
        return self.prediction_table(self.read_texts(path, column, self.cfg.encoding)).to_csv(index=False)

    # ---- inference ---------------------------------------------------------------------------------------------
    def encode(self, texts: list[str], unseen: bool = False) -> list[list[int]]:
        """Token ids of each text (at most ``max_length``; words outside the vocabulary are ``<unk>``). With
        ``unseen`` and an n-gram bag with character n-grams, such words get ids after the vocabulary's instead
        (:meth:`rnnkit.layers.ngrams.BagOfNgrams.unseen_ids`): ``<unk>`` to the network, their own character
        n-grams to the bag."""
        tokens = [self.tokenizer.tokenize(t)[: self.cfg.max_length] for t in texts]
        ids = [self.vocab.encode(t) for t in tokens]
        bag = getattr(self.model, "ngrams", None)  # (an ONNX stand-in has none: its graph reads <unk>)
        if unseen and bag is not None:
            where = [(i, j) for i, t in enumerate(tokens) for j, w in enumerate(t) if w not in self.vocab]
            for (i, j), k in zip(where, bag.unseen_ids([tokens[i][j] for i, j in where])):
                ids[i][j] = k
        return [i or [self.vocab.unk] for i in ids]  # an empty text still gets one step

    def _dataset(self, texts: list[str], labels: list[str]) -> list[tuple[list[int], int]]:
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} were not seen in training (known: {self.labels})")
        return [(ids, index[y]) for ids, y in zip(self.encode(texts, unseen=True), labels)]

    def evaluate(self, texts: list[str], labels: list[str]) -> dict[str, float]:
        """Loss, accuracy and macro-F1 on labelled texts."""
        return self.score(self.loader(list(zip(texts, labels)), train=False))

    @torch.no_grad()
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """``(N, classes)`` probabilities, in ``self.labels`` order."""
        self.model.eval()
        out = np.zeros((len(texts), len(self.labels)))
        data = [(ids, i) for i, ids in enumerate(self.encode(texts, unseen=True))]
        loader = bucket_loader(data, self.cfg.batch_size, shuffle=False, pad=self.vocab.pad)
        for x, lengths, idx in self.batches(loader):
            out[idx.cpu().numpy()] = torch.softmax(self.model(x, lengths), -1).cpu().numpy()
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
        if path.suffix.lower() in TABLES:
            from ..data.timeseries import read_table

            frame = read_table(path, encoding=encoding)
            if column not in frame.columns:
                raise ValueError(
                    f"{path}: unknown column {column!r}; the file has {list(frame.columns)} (choose one with "
                    f"{option('column')})"
                )
            return frame[column].astype(str).tolist()
        if looks_like_label_lines(path, encoding, prefixed_only=True):  # classify the text, not its label
            return read_label_lines(path, encoding)[0]
        return read_lines(path, encoding)
