"""Translation (and other unaligned sequence-to-sequence tasks): an attentional encoder-decoder scored by BLEU."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data.batching import pad_collate
from ..data.readers import read_lines, read_parallel
from ..data.text import Vocab, auto_subword_vocab, make_tokenizer, tokenizer_from_json
from ..errors import option
from ..metrics import bleu
from ..topologies.base import RNNConfig
from ..topologies.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Inputs, Task, bucket_loader
from .flags import Flag


@dataclass
class TranslateConfig:
    """Translation from two line-aligned files.

    Attributes:
        level: tokens: ``subword`` (BPE, Sennrich et al. 2016), ``word`` (words and punctuation) or ``char``.
        lowercase: lowercase both sides (BLEU is then computed on lowercased references too).
        min_freq: word level: words rarer than this in training become ``<unk>`` (subwords and characters keep
            every token seen: BPE already merged only frequent pairs).
        subword_vocab: BPE vocabulary size; None picks it from the size of the training text
            (:func:`rnnkit.data.text.auto_subword_vocab`).
        joint_subwords: learn one BPE model on both sides (names, numbers and cognates split the same way);
            each side still has its own vocabulary of the pieces it uses.
        max_length: drop training pairs longer than this (tokens, either side); the decode length limit is
            the source length + 10.
        encoding: text encoding of the files.
        model: the encoder-decoder (its ``src_vocab``/``tgt_vocab`` are set from the data).
        beam_size, alpha: beam search width and length-penalty exponent for evaluation and prediction.
        val_fraction: pairs held out when no --dev files are given.
        batch_size: pairs per step (batched by source length).
        select_by_bleu: validation also translates the validation pairs (greedy) and scores BLEU; the trainer then
            keeps and early-stops on ``val_bleu`` (what the model is for) instead of the loss.
        trainer: optimisation options.
    """

    level: str = "subword"
    lowercase: bool = True
    min_freq: int = 2
    subword_vocab: int | None = None
    joint_subwords: bool = True
    max_length: int = 50
    encoding: str = "utf-8"
    model: EncoderDecoderConfig = field(
        default_factory=lambda: EncoderDecoderConfig(
            embedding_dim=256,
            encoder=RNNConfig(cell="lstm", hidden_size=256, bidirectional=True),
            decoder=RNNConfig(cell="lstm", hidden_size=512),
            attention="general",
            dropout=0.3,
            tie_embeddings=True,
            label_smoothing=0.1,
        )
    )
    beam_size: int = 5
    alpha: float = 0.6
    val_fraction: float = 0.05
    batch_size: int = 64
    select_by_bleu: bool = True
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None,
            max_epochs=50,
            min_steps=1000,
            lr=2e-3,
            schedule="plateau",
            plateau_patience=1,
            early_stopping=3,
            monitor="val_bleu",
            mode="max",
        )
    )


Pair = tuple[str, str]


class Translator(Task):
    """A trained encoder-decoder: ``translate`` sentences (beam search), ``evaluate`` BLEU with sacrebleu."""

    name = "translate"
    Config = TranslateConfig
    summary = "Translate (or summarise): encoder-decoder with attention and beam search; BLEU with sacrebleu."
    example = "rnnkit train translate --src train.de --tgt train.en --out runs/de-en"
    rnn_keys = ("model.encoder", "model.decoder")
    auto_defaults: ClassVar[dict[str, str]] = {"subword_vocab": "from the training text's size"}
    outputs = ("predictions.jsonl",)
    flags = (
        Flag("src", "--src", "source-language file, one sentence per line (.gz allowed)", Path, required=True),
        Flag("tgt", "--tgt", "target-language file, line-aligned with --src", Path, required=True),
        Flag("dev_src", "--dev-src", "validation source file", Path),
        Flag("dev_tgt", "--dev-tgt", "validation target file", Path),
        Flag("test_src", "--test-src", "test source file", Path),
        Flag("test_tgt", "--test-tgt", "test target file", Path),
        Flag("level", "--level", "tokens: subword, word or char", key="level"),
        Flag("subword_vocab", "--subword-vocab", "BPE vocabulary size", int, key="subword_vocab"),
        Flag("lowercase", "--lowercase/--cased", "lowercase both sides", bool, key="lowercase"),
        Flag("attention", "--attention", "none, bahdanau, dot or general", key="model.attention"),
        Flag("beam", "--beam", "beam size for evaluation", int, key="beam_size"),
        Flag("alpha", "--alpha", "beam search length-penalty exponent (0: none)", float, key="alpha"),
        Flag("encoding", "--encoding", "text encoding", key="encoding"),
    )

    def __init__(self, cfg: TranslateConfig, model: EncoderDecoder, src: tuple[Any, Vocab], tgt: tuple[Any, Vocab]):
        super().__init__(cfg, model)
        (self.src_tok, self.src_vocab), (self.tgt_tok, self.tgt_vocab) = src, tgt

    @classmethod
    def train(  # type: ignore[override]
        cls,
        cfg: TranslateConfig,
        src: str | Path,
        tgt: str | Path,
        out: str | Path,
        *,
        dev: tuple[str | Path, str | Path] | None = None,
        test: tuple[str | Path, str | Path] | None = None,
        overwrite: bool = False,
        resume: bool = False,
    ) -> tuple[Translator, dict[str, Any]]:
        """Train on the line-aligned files ``src`` and ``tgt`` (``dev``/``test``: pairs of files)."""
        task, metrics = cls.run_training(cfg, (src, tgt), out, dev=dev, test=test, overwrite=overwrite, resume=resume)
        return task, metrics  # type: ignore[return-value]

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: TranslateConfig, source: tuple[str | Path, str | Path]) -> list[Pair]:
        return read_parallel(*source, cfg.encoding)

    @classmethod
    def build(cls, cfg: TranslateConfig, train: list[Pair]) -> Translator:
        prep = (lambda t: t.lower()) if cfg.lowercase else (lambda t: t)
        texts = [[prep(p[side]) for p in train] for side in (0, 1)]
        min_freq = cfg.min_freq if cfg.level == "word" else 1
        vocab_size = cfg.subword_vocab
        if cfg.level == "subword" and vocab_size is None:
            vocab_size = auto_subword_vocab(sum(len(t.split()) for side in texts for t in side))
        shared = None
        if cfg.level == "subword" and cfg.joint_subwords:
            shared = make_tokenizer("subword", texts=[*texts[0], *texts[1]], vocab_size=vocab_size)
        sides = []
        for side in texts:
            tok = shared or make_tokenizer(cfg.level, texts=side, vocab_size=vocab_size or 8000)
            sides.append((tok, Vocab.build((tok.tokenize(t) for t in side), min_freq)))
        return cls(cfg, cls.build_model(cfg, len(sides[0][1]), len(sides[1][1])), sides[0], sides[1])

    @staticmethod
    def build_model(cfg: TranslateConfig, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
        return EncoderDecoder(
            dataclasses.replace(
                cfg.model, src_vocab=src_vocab, tgt_vocab=tgt_vocab, pad=Vocab.pad, bos=Vocab.bos, eos=Vocab.eos
            )
        )

    def loader(self, examples: list[Pair], *, train: bool) -> Any:
        data = self._pairs(examples, self.cfg.max_length if train else None)
        if train and not data:
            raise ValueError(
                f"no training pair is within max_length={self.cfg.max_length} tokens; raise {option('max_length')}"
            )
        loader = bucket_loader(
            data, self.cfg.batch_size, shuffle=train, seed=self.cfg.trainer.seed, pad=Vocab.pad, sequences=(0, 1)
        )
        if not train:
            loader.pairs = examples  # type: ignore[attr-defined]  # validation BLEU is scored on the real references
        return loader

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, x_len, y, _ = batch
        return unwrap(model).loss(model(x, x_len, y[:, :-1]), y[:, 1:])

    def score(self, loader: Any) -> dict[str, float]:
        """Validation: the mean loss, and with ``select_by_bleu`` the BLEU of greedy translations of the pairs."""
        metrics = super().score(loader)
        pairs = getattr(loader, "pairs", None)
        if self.cfg.select_by_bleu and pairs:
            hyps = self.translate([s for s, _ in pairs], beam_size=1)
            metrics["bleu"] = bleu(hyps, [self._prep(t) for _, t in pairs])
        return metrics

    def trainer_config(self) -> TrainerConfig:
        cfg = self.cfg.trainer
        if not self.cfg.select_by_bleu and cfg.monitor == "val_bleu":  # nothing scores BLEU: fall back to the loss
            return dataclasses.replace(cfg, monitor="val_loss", mode="min")
        return cfg

    def evaluate_examples(self, examples: list[Pair]) -> dict[str, Any]:
        return self.evaluate(examples)

    def report_part(self, examples: list[Pair], out: Path) -> dict[str, Any]:
        metrics, hyps = self.score_pairs(examples)
        rows = [{"source": s, "reference": t, "translation": h} for (s, t), h in zip(examples, hyps)]
        (out / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return metrics

    def artifacts(self) -> dict[str, Any]:
        return {
            "src_vocab": self.src_vocab.to_json(),
            "tgt_vocab": self.tgt_vocab.to_json(),
            "src_tokenizer": self.src_tok.to_json(),
            "tgt_tokenizer": self.tgt_tok.to_json(),
        }

    @classmethod
    def from_artifacts(cls, cfg: TranslateConfig, artifacts: dict[str, Any]) -> Translator:
        sv, tv = Vocab.from_json(artifacts["src_vocab"]), Vocab.from_json(artifacts["tgt_vocab"])
        return cls(
            cfg,
            cls.build_model(cfg, len(sv), len(tv)),
            (tokenizer_from_json(artifacts["src_tokenizer"]), sv),
            (tokenizer_from_json(artifacts["tgt_tokenizer"]), tv),
        )

    @classmethod
    def sources(cls, given: dict[str, Any]) -> tuple[Any, Any, Any]:
        for a, b in (("dev_src", "dev_tgt"), ("test_src", "test_tgt")):
            if (given.get(a) is None) != (given.get(b) is None):
                raise ValueError("give --dev-src with --dev-tgt, and --test-src with --test-tgt")
        dev = (given["dev_src"], given["dev_tgt"]) if given.get("dev_src") else None
        test = (given["test_src"], given["test_tgt"]) if given.get("test_src") else None
        return (given["src"], given["tgt"]), dev, test

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        if inputs.src is None or inputs.tgt is None:
            raise ValueError("translate models are evaluated on --src and --tgt files")
        return self.evaluate(read_parallel(inputs.src, inputs.tgt, self.cfg.encoding), inputs.beam)

    def predict_inputs(self, inputs: Inputs) -> str:
        if inputs.data is None:
            raise ValueError("give --data with the sentences to translate, one per line")
        return "\n".join(self.translate(self.read_sources(inputs.data), inputs.beam)) + "\n"

    # ---- inference ---------------------------------------------------------------------------------------------
    def _prep(self, text: str) -> str:
        return text.lower() if self.cfg.lowercase else text

    def _pairs(self, pairs: list[Pair], limit: int | None) -> list[tuple[list[int], list[int]]]:
        out = []
        for s, t in pairs:
            src = self.src_vocab.encode(self.src_tok.tokenize(self._prep(s)))
            tgt = self.tgt_vocab.encode(self.tgt_tok.tokenize(self._prep(t)), bos=True, eos=True)
            if src and (limit is None or max(len(src), len(tgt) - 2) <= limit):
                out.append((src, tgt))
        return out

    @torch.no_grad()
    def translate(
        self, sentences: list[str], beam_size: int | None = None, batch_size: int = 64, search_batch: int = 256
    ) -> list[str]:
        """Detokenised translations of ``sentences``.

        Sentences are searched in order of source length, ``search_batch`` at a time (beam search: the longer the
        batch, the fewer times each step reads the output layer's weights). The decode length limit of a sentence
        is the longest source among its ``batch_size`` neighbours in that order, + 10 (as when the search ran
        ``batch_size`` sentences at a time).
        """
        self.model.eval()
        beam = beam_size or self.cfg.beam_size
        ids = [self.src_vocab.encode(self.src_tok.tokenize(self._prep(s))) or [Vocab.unk] for s in sentences]
        out = [""] * len(sentences)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        cap = [0] * len(ids)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            longest = max(len(ids[i]) for i in chunk) + 10
            for i in chunk:
                cap[i] = longest
        step = batch_size if beam == 1 else max(search_batch, 1)
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            x, lengths = pad_collate([(ids[i],) for i in chunk], pad=Vocab.pad)
            caps = [cap[i] for i in chunk]
            hyps = self.model.translate(
                x.to(self.device),
                lengths,
                beam_size=beam,
                max_length=max(caps) if beam == 1 else caps,
                alpha=self.cfg.alpha,
            )
            for i, h in zip(chunk, hyps):
                out[i] = self.tgt_tok.detokenize(self.tgt_vocab.decode(h[0].tokens))
        return out

    def evaluate(self, pairs: list[Pair], beam_size: int | None = None) -> dict[str, float]:
        """Corpus BLEU (sacrebleu) of the translations against the references, and the teacher-forced loss."""
        return self.score_pairs(pairs, beam_size)[0]

    def score_pairs(self, pairs: list[Pair], beam_size: int | None = None) -> tuple[dict[str, float], list[str]]:
        """:meth:`evaluate`'s metrics and the translations they scored."""
        hyps = self.translate([s for s, _ in pairs], beam_size)
        refs = [self._prep(t) for _, t in pairs]
        loss = Task.score(self, self.loader(pairs, train=False))["loss"]
        return {"bleu": bleu(hyps, refs), "loss": loss, "n": len(pairs)}, hyps

    def read_sources(self, path: str | Path) -> list[str]:
        return read_lines(path, self.cfg.encoding)
