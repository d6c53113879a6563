"""Tiny trained-shaped runs for the serving tests (random weights, saved as `rnnkit train` saves them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnkit.data.text import Vocab, make_tokenizer
from rnnkit.topologies.base import RNNConfig

TEXT = "the quick brown fox jumps over the lazy dog. " * 4


def lm_run(path: Path, cell: str = "lstm", hidden: int = 16, layers: int = 2) -> Path:
    """A char language model (random weights) saved in ``path/model``."""
    from rnnkit.tasks.lm import LanguageModel, LMConfig

    torch.manual_seed(0)
    cfg = LMConfig(embedding_dim=8, rnn=RNNConfig(cell=cell, hidden_size=hidden, num_layers=layers))
    tok = make_tokenizer("char")
    vocab = Vocab.build([tok.tokenize(TEXT)])
    task = LanguageModel(cfg, LanguageModel.build_model(cfg, len(vocab)), tok, vocab)
    task.model.eval()
    task.save(path / "model")
    return path


def tag_run(path: Path, crf: bool = True, bidirectional: bool = False) -> Path:
    """A tagger (random weights) over a few words."""
    from rnnkit.tasks.tag import TagConfig, Tagger

    torch.manual_seed(0)
    cfg = TagConfig(embedding_dim=8, rnn=RNNConfig(cell="gru", hidden_size=12, bidirectional=bidirectional), crf=crf)
    vocab = Vocab.build([TEXT.split()])
    tags = ["B-X", "I-X", "O"]
    task = Tagger(cfg, Tagger.build_model(cfg, len(vocab), len(tags)), vocab, tags)
    with torch.no_grad():  # sharper emissions and transitions, so that tags differ and the CRF matters
        for p in task.model.head.parameters():
            p.mul_(8.0)
        if crf:
            task.model.crf.transitions.normal_(0, 1.0)
    task.save(path / "model")
    return path


def series(n: int = 120) -> pd.DataFrame:
    """A daily series with a weekly season and a covariate."""
    t = np.arange(n)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "y": 10 + np.sin(2 * np.pi * t / 7) + 0.05 * t,
            "x": np.cos(t / 5.0),
        }
    )


def forecast_run(path: Path, timestep: int = 8, horizon: int = 3) -> Path:
    """A forecaster (random weights, scaler fitted on the series) with a calendar feature and a past covariate."""
    from rnnkit.data.timeseries import SeriesConfig
    from rnnkit.tasks.forecast import ForecastConfig, Forecaster

    torch.manual_seed(0)
    sc = SeriesConfig(
        target=["y"],
        time_column="date",
        past_covariates=["x"],
        calendar=["dayofweek"],
        timestep=timestep,
        horizon=horizon,
    )
    cfg = ForecastConfig(series=sc, rnn=RNNConfig(cell="gru", hidden_size=8))
    splits = Forecaster.split(cfg, series())
    task = Forecaster.build(cfg, splits.train)
    task.save(path / "model")
    return path


def classify_run(path: Path) -> Path:
    """A word-level classifier (random weights) with two labels."""
    from rnnkit.tasks.classify import Classifier, ClassifyConfig

    torch.manual_seed(0)
    cfg = ClassifyConfig(embedding_dim=8, rnn=RNNConfig(cell="lstm", hidden_size=8, bidirectional=True))
    tok = make_tokenizer("word", lowercase=True)
    vocab = Vocab.build([tok.tokenize(TEXT)])
    task = Classifier(cfg, Classifier.build_model(cfg, len(vocab), 2), vocab, tok, ["neg", "pos"])
    task.save(path / "model")
    return path


def translate_run(path: Path) -> Path:
    """A word-level encoder-decoder (random weights), the same vocabulary on both sides."""
    from rnnkit.tasks.translate import TranslateConfig, Translator
    from rnnkit.topologies.encoder_decoder import EncoderDecoderConfig

    torch.manual_seed(0)
    model = EncoderDecoderConfig(
        embedding_dim=8,
        encoder=RNNConfig(cell="gru", hidden_size=8, bidirectional=True),
        decoder=RNNConfig(cell="gru", hidden_size=8),
        attention="general",
    )
    cfg = TranslateConfig(model=model)
    tok = make_tokenizer("word")
    vocab = Vocab.build([tok.tokenize(TEXT)])
    task = Translator(cfg, Translator.build_model(cfg, len(vocab), len(vocab)), (tok, vocab), (tok, vocab))
    task.save(path / "model")
    return path


def next_token_probs(task, logits: torch.Tensor) -> torch.Tensor:
    """What an LM stream answers for ``logits (..., V)``: the distribution generation draws from (the task's
    banned special tokens at probability 0)."""
    return torch.softmax(logits.index_fill(-1, torch.tensor(task.banned), float("-inf")), -1)


def panel(n: int = 60) -> pd.DataFrame:
    """Three daily series in one long table (series id ``store``) with two categorical statics."""
    parts = []
    for k, (store, size, kind) in enumerate((("a", "s", "mall"), ("b", "l", "street"), ("c", "m", "mall"))):
        frame = series(n)
        frame["y"] = frame["y"] * (k + 1) + 5 * k
        parts.append(frame.assign(store=store, size=size, kind=kind))
    return pd.concat(parts, ignore_index=True)


def panel_forecast_run(path: Path, timestep: int = 8, horizon: int = 3) -> Path:
    """A global forecaster over :func:`panel` (random weights; per-series scalers, static covariates)."""
    from rnnkit.data.timeseries import SeriesConfig
    from rnnkit.tasks.forecast import ForecastConfig, Forecaster

    torch.manual_seed(0)
    sc = SeriesConfig(
        target=["y"],
        time_column="date",
        series_id="store",
        static=["size", "kind"],
        past_covariates=["x"],
        calendar=["dayofweek"],
        timestep=timestep,
        horizon=horizon,
    )
    cfg = ForecastConfig(series=sc, rnn=RNNConfig(cell="gru", hidden_size=8))
    task = Forecaster.build(cfg, Forecaster.split(cfg, panel()).train)
    task.save(path / "model")
    return path
