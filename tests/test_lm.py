"""Language-model task on a tinyshakespeare slice: bpc, seeded generation, save -> load -> same text."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.decoding import SamplingConfig
from rnnkit.tasks.lm import LanguageModel, LMConfig
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


def test_char_lm_end_to_end(slices, tmp_path):
    cfg = LMConfig(
        timestep=32,
        batch_size=16,
        embedding_dim=16,
        rnn=RNNConfig(cell="gru", hidden_size=64),
        trainer=TrainerConfig(epochs=2, lr=5e-3, progress=False),
    )
    task, metrics = LanguageModel.train(cfg, slices["shakespeare.txt"], tmp_path / "lm")
    val = metrics["val"]
    assert val["bpc"] == pytest.approx(val["loss"] / 0.6931471805599453, rel=0.05)
    assert val["bpc"] < 4.5, "after two epochs a char model beats uniform guessing over ~60 characters (5.9 bits)"
    assert len((tmp_path / "lm" / "samples.txt").read_text()) > 400
    text = task.generate("ROMEO:", 60, SamplingConfig(temperature=0.8), seed=0)
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 60
    again = rnnkit.load(tmp_path / "lm")
    assert again.generate("ROMEO:", 60, SamplingConfig(temperature=0.8), seed=0) == text
    assert again.evaluate("First Citizen:\nBefore we proceed any further, hear me speak.")["perplexity"] > 1
    with pytest.raises(ValueError, match="length must be >= 1"):
        task.generate("x", 0)


def test_word_level_and_tied_weights(slices, tmp_path):
    cfg = LMConfig(
        level="word",
        lowercase=True,
        timestep=16,
        batch_size=8,
        embedding_dim=32,
        tie_weights=True,
        rnn=RNNConfig(cell="lstm", hidden_size=32),
        trainer=TrainerConfig(epochs=1, progress=False),
    )
    task, metrics = LanguageModel.train(cfg, slices["shakespeare.txt"], tmp_path / "w")
    assert metrics["val"]["perplexity"] > 1
    assert task.generate("my lord", 5, SamplingConfig(greedy=True)).startswith("my lord ")


def test_generation_never_draws_special_tokens(slices, tmp_path):
    cfg = LMConfig(
        timestep=16,
        batch_size=8,
        embedding_dim=8,
        rnn=RNNConfig(cell="gru", hidden_size=16),
        trainer=TrainerConfig(epochs=1, progress=False),
    )
    task, _ = LanguageModel.train(cfg, slices["shakespeare.txt"], tmp_path / "lm")
    with torch.no_grad():  # make the specials the most likely tokens: they must still never be drawn
        task.model.head.net[-1].bias[:4] += 100.0
    text = task.generate("ROMEO:", 200, SamplingConfig(temperature=1.0), seed=0)
    assert len(text) == len("ROMEO:") + 200


def test_auto_streams_keep_enough_windows_per_epoch():
    from rnnkit.tasks.lm import auto_streams

    assert auto_streams(1_000_000, 128) == 32  # tinyshakespeare: 32 streams, 244 windows per epoch
    assert auto_streams(27_000, 128) == 3  # a short text gets fewer streams, so an epoch still has 64 windows
    assert auto_streams(100, 128) == 1
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        LMConfig(batch_size=0)


def test_default_recipe_learns_on_a_shakespeare_slice(slices, tmp_path):
    """The default recipe (stacked LSTM, stateful TBPTT, streams sized to the text, plateau schedule) at a small
    width: validation nats per character fall well below the character unigram entropy, in seconds."""
    import collections
    import dataclasses
    import math

    cfg = LMConfig(rnn=RNNConfig(cell="lstm", hidden_size=64, num_layers=2, dropout=0.0), embedding_dim=32, dropout=0.0)
    cfg.trainer = dataclasses.replace(cfg.trainer, epochs=6, lr=5e-3, min_steps=0, progress=False)
    task, metrics = LanguageModel.train(cfg, slices["shakespeare.txt"], tmp_path / "lm")
    assert task.cfg.batch_size == 3  # chosen from the text's size and saved with the model
    text = slices["shakespeare.txt"].read_text()
    val = text[int(len(text) * 0.9) :]
    unigram = -sum(c / len(val) * math.log(c / len(val)) for c in collections.Counter(val).values())
    assert metrics["val"]["loss"] < 0.75 * unigram, f"{metrics['val']['loss']:.2f} nats/char, unigram {unigram:.2f}"
    assert rnnkit.load(tmp_path / "lm").cfg.batch_size == 3


def test_given_epochs_anneal_on_a_cosine_else_the_plateau_rule(slices):
    import dataclasses

    task = LanguageModel.build(LMConfig(rnn=RNNConfig(hidden_size=8)), "to be or not to be " * 50)
    assert task.trainer_config().schedule == "plateau" and task.trainer_config().epochs is None
    task.cfg.trainer = dataclasses.replace(task.cfg.trainer, epochs=3)
    assert task.trainer_config().schedule == "cosine"
    task.cfg.anneal = False
    assert task.trainer_config().schedule == "plateau"
