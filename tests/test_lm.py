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
        task.model.head.net[-1].bias[: 4] += 100.0
    text = task.generate("ROMEO:", 200, SamplingConfig(temperature=1.0), seed=0)
    assert len(text) == len("ROMEO:") + 200
