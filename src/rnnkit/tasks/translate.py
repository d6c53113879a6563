"""Translation (and other unaligned sequence-to-sequence tasks): an attentional encoder-decoder scored by BLEU."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.batching import pad_collate
from ..data.readers import read_lines, read_parallel
from ..data.text import Vocab, make_tokenizer, tokenizer_from_json
from ..metrics import bleu
from ..topologies.base import RNNConfig
from ..topologies.encoder_decoder import EncoderDecoder, EncoderDecoderConfig
from ..training.distributed import unwrap
from ..training.trainer import TrainerConfig
from .base import Task, bucket_loader, prepare_out, set_seed, write_json


@dataclass
class TranslateConfig:
    """Translation from two line-aligned files.

    Attributes:
        level: tokens: ``word`` (words and punctuation), ``char`` or ``subword`` (BPE learned per side).
        lowercase: lowercase both sides (BLEU is then computed on lowercased references too).
        min_freq: tokens rarer than this in training become ``<unk>``.
        subword_vocab: BPE vocabulary size per side for ``level="subword"``.
        max_length: drop training pairs longer than this (tokens, either side); the decode length limit is
            ``max_length + 10``.
        encoding: text encoding of the files.
        model: the encoder-decoder (its ``src_vocab``/``tgt_vocab`` are set from the data).
        beam_size, alpha: beam search width and length-penalty exponent for evaluation and prediction.
        val_fraction: pairs held out when no --dev files are given.
        batch_size: pairs per step (batched by source length).
        trainer: optimisation options.
    """

    level: str = "word"
    lowercase: bool = True
    min_freq: int = 2
    subword_vocab: int = 8000
    max_length: int = 50
    encoding: str = "utf-8"
    model: EncoderDecoderConfig = field(
        default_factory=lambda: EncoderDecoderConfig(
            embedding_dim=256,
            encoder=RNNConfig(cell="gru", hidden_size=256, bidirectional=True),
            decoder=RNNConfig(cell="gru", hidden_size=256),
            attention="general",
            dropout=0.3,
        )
    )
    beam_size: int = 4
    alpha: float = 0.6
    val_fraction: float = 0.05
    batch_size: int = 64
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=10, lr=1e-3, early_stopping=3))


class Translator(Task):
    """A trained encoder-decoder: ``translate`` sentences (beam search), ``evaluate`` BLEU with sacrebleu."""

    name = "translate"
    Config = TranslateConfig

    def __init__(self, cfg: TranslateConfig, model: EncoderDecoder, src: tuple[Any, Vocab], tgt: tuple[Any, Vocab]):
        super().__init__(cfg, model)
        (self.src_tok, self.src_vocab), (self.tgt_tok, self.tgt_vocab) = src, tgt

    @staticmethod
    def build_model(cfg: TranslateConfig, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
        return EncoderDecoder(
            dataclasses.replace(
                cfg.model, src_vocab=src_vocab, tgt_vocab=tgt_vocab, pad=Vocab.pad, bos=Vocab.bos, eos=Vocab.eos
            )
        )

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
        model = cls.build_model(cfg, len(sv), len(tv))
        return cls(
            cfg,
            model,
            (tokenizer_from_json(artifacts["src_tokenizer"]), sv),
            (tokenizer_from_json(artifacts["tgt_tokenizer"]), tv),
        )

    def _prep(self, text: str) -> str:
        return text.lower() if self.cfg.lowercase else text

    def _pairs(self, pairs: list[tuple[str, str]], limit: int | None) -> list[tuple[list[int], list[int]]]:
        out = []
        for s, t in pairs:
            src = self.src_vocab.encode(self.src_tok.tokenize(self._prep(s)))
            tgt = self.tgt_vocab.encode(self.tgt_tok.tokenize(self._prep(t)), bos=True, eos=True)
            if src and (limit is None or max(len(src), len(tgt) - 2) <= limit):
                out.append((src, tgt))
        return out

    def _loader(self, data: list, shuffle: bool, seed: int = 0) -> DataLoader:
        return bucket_loader(data, self.cfg.batch_size, shuffle=shuffle, seed=seed, pad=Vocab.pad, sequences=(0, 1))

    @classmethod
    def train(
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
        out = prepare_out(out, overwrite=overwrite, resume=resume)
        set_seed(cfg.trainer.seed)
        pairs = read_parallel(src, tgt, cfg.encoding)
        if dev is not None:
            val = read_parallel(*dev, cfg.encoding)
        else:
            n = max(1, round(cfg.val_fraction * len(pairs)))
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(cfg.trainer.seed)).tolist()
            val, pairs = [pairs[i] for i in order[:n]], [pairs[i] for i in order[n:]]
        prep = (lambda t: t.lower()) if cfg.lowercase else (lambda t: t)
        toks = []
        for side in (0, 1):
            texts = [prep(p[side]) for p in pairs]
            tok = make_tokenizer(cfg.level, texts=texts, vocab_size=cfg.subword_vocab)
            toks.append((tok, Vocab.build((tok.tokenize(t) for t in texts), cfg.min_freq)))
        task = cls(cfg, cls.build_model(cfg, len(toks[0][1]), len(toks[1][1])), toks[0], toks[1])
        train_set = task._pairs(pairs, cfg.max_length)
        if not train_set:
            raise ValueError(f"no training pair is within max_length={cfg.max_length} tokens")

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
            x, x_len, y, _ = batch
            return unwrap(model).loss(model(x, x_len, y[:, :-1]), y[:, 1:])

        task.fit(
            task._loader(train_set, True, cfg.trainer.seed),
            task._loader(task._pairs(val, None), False),
            loss_fn,
            out,
            cfg.trainer,
            resume=resume,
        )
        metrics, hyps = {}, []
        for part, data in (("val", val), ("test", read_parallel(*test, cfg.encoding) if test is not None else None)):
            if data:
                metrics[part], hyps = task.score(data)
                rows = [{"source": s, "reference": t, "translation": h} for (s, t), h in zip(data, hyps)]
                (out / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        write_json(out / "metrics.json", metrics)
        return task, metrics

    @torch.no_grad()
    def translate(self, sentences: list[str], beam_size: int | None = None, batch_size: int = 64) -> list[str]:
        """Detokenised translations of ``sentences``."""
        self.model.eval()
        beam = beam_size or self.cfg.beam_size
        ids = [self.src_vocab.encode(self.src_tok.tokenize(self._prep(s))) or [Vocab.unk] for s in sentences]
        out = [""] * len(sentences)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            x, lengths = pad_collate([(ids[i],) for i in chunk], pad=Vocab.pad)
            hyps = self.model.translate(
                x, lengths, beam_size=beam, max_length=max(lengths.tolist()) + 10, alpha=self.cfg.alpha
            )
            for i, h in zip(chunk, hyps):
                out[i] = self.tgt_tok.detokenize(self.tgt_vocab.decode(h[0].tokens))
        return out

    def evaluate(self, pairs: list[tuple[str, str]], beam_size: int | None = None) -> dict[str, float]:
        """Corpus BLEU (sacrebleu) of the translations against the references, and the teacher-forced loss."""
        return self.score(pairs, beam_size)[0]

    def score(self, pairs: list[tuple[str, str]], beam_size: int | None = None) -> tuple[dict[str, float], list[str]]:
        """:meth:`evaluate`'s metrics and the translations they scored."""
        hyps = self.translate([s for s, _ in pairs], beam_size)
        refs = [self._prep(t) for _, t in pairs]
        loss, n = 0.0, 0
        with torch.no_grad():
            for x, x_len, y, _ in self._loader(self._pairs(pairs, None), False):
                loss += float(self.model.loss(self.model(x, x_len, y[:, :-1]), y[:, 1:])) * len(x)
                n += len(x)
        return {"bleu": bleu(hyps, refs), "loss": loss / max(n, 1), "n": len(pairs)}, hyps

    def read_sources(self, path: str | Path) -> list[str]:
        return read_lines(path, self.cfg.encoding)
