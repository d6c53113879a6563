"""Language modelling: a many-to-many RNN predicts the next token, trained with stateful truncated BPTT;
scored by loss, perplexity and bits per character; used one-to-many to generate text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.batching import StreamBatches
from ..data.readers import read_text
from ..data.text import Vocab, make_tokenizer, tokenizer_from_json
from ..decoding import SamplingConfig
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import lm_metrics
from ..topologies.base import RNNConfig
from ..topologies.many_to_many import ManyToMany, ManyToManyConfig
from ..training.trainer import TrainerConfig
from .base import Task, prepare_out, set_seed, write_json


@dataclass
class LMConfig:
    """Language model over one text.

    Attributes:
        level: ``char``, ``word`` or ``subword`` tokens.
        lowercase: lowercase the text first.
        min_freq: rarer tokens become ``<unk>`` (word/subword level).
        subword_vocab: BPE vocabulary size for ``level="subword"``.
        encoding: text encoding of the file.
        val_fraction: the last part of the text (by position) held out for validation.
        timestep: the truncated-BPTT window (tokens per step); the state carries across windows.
        batch_size: parallel contiguous streams.
        embedding_dim, dropout: token embedding size; dropout on embeddings and before the output layer.
        rnn: the recurrent core (unidirectional: it predicts the future).
        tie_weights: share the embedding matrix with the output layer.
        trainer: optimisation options (``trainer.tbptt`` is set to ``timestep``).
    """

    level: str = "char"
    lowercase: bool = False
    min_freq: int = 1
    subword_vocab: int = 8000
    encoding: str = "utf-8"
    val_fraction: float = 0.1
    timestep: int = 128
    batch_size: int = 32
    embedding_dim: int = 128
    dropout: float = 0.2
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=256, num_layers=2, dropout=0.2))
    tie_weights: bool = False
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=10, lr=2e-3, early_stopping=3))


class LanguageModel(Task):
    """A trained language model: ``generate`` text from a prompt, ``evaluate`` loss/perplexity/bpc on text."""

    name = "lm"
    Config = LMConfig

    def __init__(self, cfg: LMConfig, model: ManyToMany, tokenizer: Any, vocab: Vocab) -> None:
        super().__init__(cfg, model)
        self.tokenizer, self.vocab = tokenizer, vocab

    @staticmethod
    def build_model(cfg: LMConfig, vocab_size: int) -> ManyToMany:
        if cfg.rnn.bidirectional:
            raise ValueError("a language model predicts the next token; its rnn cannot be bidirectional")
        inp = InputConfig(vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout)
        head = HeadConfig(num_classes=vocab_size, dropout=cfg.dropout)
        return ManyToMany(ManyToManyConfig(inp, cfg.rnn, head, tie_weights=cfg.tie_weights))

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json(), "tokenizer": self.tokenizer.to_json()}

    @classmethod
    def from_artifacts(cls, cfg: LMConfig, artifacts: dict[str, Any]) -> LanguageModel:
        vocab = Vocab.from_json(artifacts["vocab"])
        return cls(cfg, cls.build_model(cfg, len(vocab)), tokenizer_from_json(artifacts["tokenizer"]), vocab)

    def ids(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.tokenize(text.lower() if self.cfg.lowercase else text))

    @staticmethod
    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor], state: Any) -> tuple[Tensor, Any]:
        x, y = batch
        out, state = model(x, state)
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)), state

    @classmethod
    def train(
        cls, cfg: LMConfig, data: str | Path, out: str | Path, *, overwrite: bool = False, resume: bool = False
    ) -> tuple[LanguageModel, dict[str, Any]]:
        out = prepare_out(out, overwrite=overwrite, resume=resume)
        set_seed(cfg.trainer.seed)
        text = read_text(data, cfg.encoding)
        text = text.lower() if cfg.lowercase else text
        cut = int(len(text) * (1 - cfg.val_fraction))
        train_text, val_text = text[:cut], text[cut:]
        tokenizer = make_tokenizer(cfg.level, texts=[train_text], vocab_size=cfg.subword_vocab)
        vocab = Vocab.build([tokenizer.tokenize(train_text)], cfg.min_freq)
        task = cls(cfg, cls.build_model(cfg, len(vocab)), tokenizer, vocab)
        train_ids = task.ids(train_text)
        if len(train_ids) < cfg.batch_size * 2:
            raise ValueError(f"the text has {len(train_ids)} training tokens, too few for batch_size={cfg.batch_size}")
        train = StreamBatches(train_ids, cfg.batch_size, cfg.timestep)
        val = task._val_streams(val_text) if val_text.strip() else None
        trainer_cfg = cfg.trainer if cfg.trainer.tbptt else _with_tbptt(cfg.trainer, cfg.timestep)

        def evaluate_fn(model: nn.Module, streams: Any) -> dict[str, float]:
            return {f"val_{k}": v for k, v in task._score(streams).items()}

        task.fit(train, val, cls.loss_fn, out, trainer_cfg, evaluate_fn=evaluate_fn, resume=resume)
        metrics = {"val": task._score(val)} if val is not None else {}
        write_json(out / "metrics.json", metrics)
        prompt = (val_text or train_text)[:40]
        sample = task.generate(prompt, 400, SamplingConfig(temperature=0.8), seed=cfg.trainer.seed)
        (out / "samples.txt").write_text(
            f"# prompt: the first 40 characters of the validation text; temperature 0.8\n{sample}\n"
        )
        return task, metrics

    def _val_streams(self, text: str) -> StreamBatches:
        ids = self.ids(text)
        streams = max(1, min(self.cfg.batch_size, (len(ids) - 1) // max(self.cfg.timestep, 1)))
        s = StreamBatches(ids, streams, self.cfg.timestep)
        s.chars_per_token = len(text) / max(len(ids), 1)  # type: ignore[attr-defined]
        return s

    @torch.no_grad()
    def _score(self, streams: StreamBatches) -> dict[str, float]:
        self.model.eval()
        total, tokens, state = 0.0, 0, None
        for x, y in streams:
            out, state = self.model(x, state)
            total += float(nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum"))
            tokens += y.numel()
        chars = tokens * getattr(streams, "chars_per_token", 1.0)
        return lm_metrics(total, tokens, max(chars, 1.0))

    def evaluate(self, text: str) -> dict[str, float]:
        """Loss (nats per token), perplexity and bits per character on ``text``, read as one stream."""
        if len(self.ids(text)) < 2:
            raise ValueError("evaluate needs a text of at least two tokens")
        return self._score(self._val_streams(text))

    def generate(
        self, prompt: str, length: int = 200, sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> str:
        """``prompt`` continued by ``length`` tokens (temperature / top-k / top-p in ``sampling``; ``seed`` for
        reproducible draws)."""
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        ids = self.ids(prompt) or [self.vocab.bos]
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        tokens, lengths = self.model.generate(torch.tensor([ids]), length, sampling or SamplingConfig(), generator=gen)
        new = self.vocab.decode(tokens[0, : int(lengths[0])].tolist())
        glue = "" if self.cfg.level == "char" or not prompt else " "
        return prompt + glue + self.tokenizer.detokenize(new)


def _with_tbptt(cfg: TrainerConfig, timestep: int) -> TrainerConfig:
    return dataclasses.replace(cfg, tbptt=timestep)
