"""Language modelling: a many-to-many RNN predicts the next token, trained with stateful truncated BPTT;
scored by loss, perplexity and bits per character; used one-to-many to generate text."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..data.batching import StreamBatches
from ..data.readers import read_text
from ..data.text import Vocab, make_tokenizer, tokenizer_from_json
from ..decoding import SamplingConfig
from ..errors import option
from ..layers.heads import HeadConfig
from ..layers.inputs import InputConfig
from ..metrics import lm_metrics
from ..topologies.base import RNNConfig
from ..topologies.many_to_many import ManyToMany, ManyToManyConfig
from ..training import distributed as D
from ..training.trainer import TrainerConfig
from .base import Inputs, Splits, Task
from .flags import Flag

#: the most tokens one call of ``generate`` produces (a typo like --length 1000000000 must not hang)
MAX_GENERATE = 100_000


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
        batch_size: parallel contiguous streams; None: 32, or fewer so that an epoch has at least 64 windows
            (a short text still gets many updates per pass).
        embedding_dim, dropout: token embedding size; dropout on embeddings and before the output layer.
        rnn: the recurrent core (unidirectional: it predicts the future).
        tie_weights: share the embedding matrix with the output layer.
        anneal: when the number of epochs is given (``trainer.epochs``, ``--epochs``), the learning rate follows a
            cosine from its peak to 0 over exactly those epochs (a known length can anneal on schedule, which ends
            lower than waiting for a plateau); False keeps ``trainer.schedule``.
        trainer: optimisation options (``trainer.tbptt`` is set to ``timestep``). By default the length adapts to
            the text: validation every epoch (or every 500 updates, whichever comes first), the learning rate
            halved whenever validation loss did not improve, training stopped after 3 evaluations without
            improvement (never before 1,000 updates), at most 50 epochs.
    """

    level: str = "char"
    lowercase: bool = False
    min_freq: int = 1
    subword_vocab: int = 8000
    encoding: str = "utf-8"
    val_fraction: float = 0.1
    timestep: int = 128
    batch_size: int | None = None
    embedding_dim: int = 128
    dropout: float = 0.25
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=512, num_layers=2, dropout=0.25))
    tie_weights: bool = False
    anneal: bool = True
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=None,
            max_epochs=50,
            min_steps=1000,
            lr=2e-3,
            schedule="plateau",
            plateau_patience=1,
            early_stopping=3,
        )
    )

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"LMConfig: {option('batch_size')} must be >= 1, got {self.batch_size}")
        if self.timestep < 1:
            raise ValueError(f"LMConfig: {option('timestep')} must be >= 1, got {self.timestep}")


#: evaluate at least this often (in updates) when an epoch is longer
EVAL_EVERY = 500


def auto_streams(tokens: int, timestep: int, most: int = 32, windows: int = 64) -> int:
    """Parallel streams for a text of ``tokens``: ``most``, or fewer so that an epoch has ``windows`` windows of
    ``timestep`` tokens (at least 1 stream)."""
    return max(1, min(most, tokens // max(1, timestep * windows)))


class LanguageModel(Task):
    """A trained language model: ``generate`` text from a prompt, ``evaluate`` loss/perplexity/bpc on text."""

    name = "lm"
    Config = LMConfig
    summary = "Language model over a text: stateful truncated BPTT; loss, perplexity, bits per character."
    example = "rnnkit train lm --data book.txt --level char --timestep 128 --out runs/book"
    outputs = ("samples.txt",)
    auto_defaults: ClassVar[dict[str, str]] = {"batch_size": "32, or fewer so that an epoch has 64 windows"}
    flags = (
        Flag(
            "data",
            "--data",
            f"a text file (its last {LMConfig.val_fraction:.0%} is the validation part)",
            Path,
            required=True,
        ),
        Flag("level", "--level", "tokens: char, word or subword", key="level"),
        Flag("timestep", "--timestep", "truncated-BPTT window in tokens", int, key="timestep"),
        Flag("tie_weights", "--tie-weights/--no-tie-weights", "share embedding and output", bool, key="tie_weights"),
        Flag("encoding", "--encoding", "text encoding", key="encoding"),
    )

    def __init__(self, cfg: LMConfig, model: ManyToMany, tokenizer: Any, vocab: Vocab) -> None:
        super().__init__(cfg, model)
        self.tokenizer, self.vocab = tokenizer, vocab

    # ---- the hooks ---------------------------------------------------------------------------------------------
    @classmethod
    def read(cls, cfg: LMConfig, source: Any) -> str:
        text = read_text(source, cfg.encoding)
        return text.lower() if cfg.lowercase else text

    @classmethod
    def split(cls, cfg: LMConfig, data: str, dev: Any = None, test: Any = None) -> Splits:
        """The first ``1 - val_fraction`` of the text trains, the rest validates (by position, not at random)."""
        cut = int(len(data) * (1 - cfg.val_fraction))
        val = dev if dev is not None else data[cut:]
        return Splits(data[:cut] if dev is None else data, val if val.strip() else None, test)

    @classmethod
    def build(cls, cfg: LMConfig, train: str) -> LanguageModel:
        tokenizer = make_tokenizer(cfg.level, texts=[train], vocab_size=cfg.subword_vocab)
        tokens = tokenizer.tokenize(train)
        vocab = Vocab.build([tokens], cfg.min_freq)
        if cfg.batch_size is None:  # the saved config records the number used
            cfg = dataclasses.replace(cfg, batch_size=auto_streams(len(tokens), cfg.timestep))
        return cls(cfg, cls.build_model(cfg, len(vocab)), tokenizer, vocab)

    @staticmethod
    def build_model(cfg: LMConfig, vocab_size: int) -> ManyToMany:
        if cfg.rnn.bidirectional:
            raise ValueError("a language model predicts the next token; its rnn cannot be bidirectional")
        inp = InputConfig(vocab_size=vocab_size, embedding_dim=cfg.embedding_dim, dropout=cfg.dropout)
        head = HeadConfig(num_classes=vocab_size, dropout=cfg.dropout)
        return ManyToMany(ManyToManyConfig(inp, cfg.rnn, head, tie_weights=cfg.tie_weights))

    @property
    def streams(self) -> int:
        return self.cfg.batch_size or 32

    def loader(self, examples: str, *, train: bool) -> StreamBatches:
        if not train:
            return self._val_streams(examples)
        ids = self.ids(examples)
        info = D.info()
        if len(ids) < self.streams * 2:
            raise ValueError(
                f"the text has {len(ids)} training tokens, too few for {option('batch_size', self.streams)}"
            )
        batches = StreamBatches(ids, self.streams, self.cfg.timestep, rank=info.rank, num_replicas=info.world_size)
        self._windows = len(batches)
        return batches

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor], state: Any = None) -> tuple[Tensor, Any]:
        x, y = batch
        out, state = model(x, state)
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)), state

    @torch.no_grad()
    def score(self, streams: Any) -> dict[str, float]:
        self.model.eval()
        total, tokens, state = 0.0, 0, None
        for x, y in self.batches(streams):
            out, state = self.model(x, state)
            total += float(nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum"))
            tokens += y.numel()
        chars = tokens * getattr(streams, "chars_per_token", 1.0)
        return lm_metrics(total, tokens, max(chars, 1.0))

    def trainer_config(self) -> TrainerConfig:
        cfg = self.cfg.trainer
        if not cfg.tbptt:
            cfg = dataclasses.replace(cfg, tbptt=self.cfg.timestep)
        if cfg.eval_every is None and getattr(self, "_windows", 0) > EVAL_EVERY:  # a long text: evaluate within epochs
            cfg = dataclasses.replace(cfg, eval_every=EVAL_EVERY)
        if self.cfg.anneal and cfg.epochs is not None:
            cfg = dataclasses.replace(cfg, schedule="cosine")
        return cfg

    def report(self, out: Path, splits: Splits) -> dict[str, Any]:
        metrics = {"val": self.evaluate(splits.val)} if splits.val is not None else {}
        prompt = (splits.val or splits.train)[:40]
        sample = self.generate(prompt, 400, SamplingConfig(temperature=0.8), seed=self.cfg.trainer.seed)
        (out / "samples.txt").write_text(
            f"# prompt: the first 40 characters of the validation text; temperature 0.8\n{sample}\n"
        )
        return metrics

    def artifacts(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_json(), "tokenizer": self.tokenizer.to_json()}

    @classmethod
    def from_artifacts(cls, cfg: LMConfig, artifacts: dict[str, Any]) -> LanguageModel:
        vocab = Vocab.from_json(artifacts["vocab"])
        return cls(cfg, cls.build_model(cfg, len(vocab)), tokenizer_from_json(artifacts["tokenizer"]), vocab)

    def evaluate_inputs(self, inputs: Inputs) -> dict[str, Any]:
        if inputs.data is None:
            raise ValueError("give --data with a text to evaluate on")
        return self.evaluate(read_text(inputs.data, self.cfg.encoding))

    def predict_inputs(self, inputs: Inputs) -> str:
        raise ValueError("a language model generates text: use 'rnnkit generate' (or 'rnnkit evaluate' on a text)")

    # ---- inference ---------------------------------------------------------------------------------------------
    def ids(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.tokenize(text.lower() if self.cfg.lowercase else text))

    def _val_streams(self, text: str) -> StreamBatches:
        ids = self.ids(text)
        streams = max(1, min(self.streams, (len(ids) - 1) // max(self.cfg.timestep, 1)))
        s = StreamBatches(ids, streams, self.cfg.timestep)
        s.chars_per_token = len(text) / max(len(ids), 1)  # type: ignore[attr-defined]
        return s

    def evaluate(self, text: str) -> dict[str, float]:
        """Loss (nats per token), perplexity and bits per character on ``text``, read as one stream."""
        if len(self.ids(text)) < 2:
            raise ValueError("evaluate needs a text of at least two tokens")
        return self.score(self._val_streams(text))

    @property
    def banned(self) -> list[int]:
        """Token ids generation never draws (also ``rnnkit serve``'s streams): the special tokens, which never occur
        in the text the model learned from and print as nothing."""
        return [self.vocab.pad, self.vocab.unk, self.vocab.bos, self.vocab.eos]

    def _tokens(self, prompt: str, length: int, sampling: SamplingConfig | None, seed: int | None) -> Iterator[int]:
        if not 1 <= length <= MAX_GENERATE:
            raise ValueError(f"length must be >= 1 and <= {MAX_GENERATE}, got {length} ({option('length')})")
        ids = self.ids(prompt) or [self.vocab.bos]
        gen = torch.Generator(device=self.device).manual_seed(seed) if seed is not None else None
        self.model.eval()
        stream = self.model.stream(torch.tensor([ids], device=self.device), sampling, gen, banned=self.banned)
        return (int(t[0]) for t in itertools.islice(stream, length))

    def generate(
        self, prompt: str, length: int = 200, sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> str:
        """``prompt`` continued by ``length`` tokens (temperature / top-k / top-p in ``sampling``; ``seed`` for
        reproducible draws)."""
        return "".join(self.generate_stream(prompt, length, sampling, seed))

    def generate_stream(
        self, prompt: str, length: int = 200, sampling: SamplingConfig | None = None, seed: int | None = None
    ) -> Iterator[str]:
        """:meth:`generate` piece by piece as the tokens are drawn: the prompt first, then the text each new token
        adds (for streaming output). The pieces join to exactly what :meth:`generate` returns."""
        tokens = self._tokens(prompt, length, sampling, seed)  # checks the length before anything is yielded
        return self._pieces(prompt, tokens)

    def _pieces(self, prompt: str, tokens: Iterator[int]) -> Iterator[str]:
        yield prompt
        if self.cfg.level == "char":
            yield from ("".join(self.vocab.decode([t])) for t in tokens)
            return
        words: list[str] = []
        for token in tokens:
            word = self.vocab.decode([token])
            if not word:  # special tokens (pad, bos, eos) print as nothing
                continue
            # detokenising is local, so the text a token adds is what it adds to the last few tokens
            base = words[-32:]
            before, after = self.tokenizer.detokenize(base), self.tokenizer.detokenize([*base, word[0]])
            piece = after[len(before) :] if after.startswith(before) else " " + self.tokenizer.detokenize(word)
            if not words and prompt:
                piece = " " + piece.lstrip()
            words.append(word[0])
            yield piece
