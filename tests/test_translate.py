"""Translation task on a Multi30k slice: BLEU via sacrebleu, translate, save -> load -> same output."""

from __future__ import annotations

import dataclasses
import json

import rnnkit
from rnnkit.tasks.translate import TranslateConfig, Translator
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


def test_multi30k_slice_end_to_end(slices, tmp_path):
    small = dataclasses.replace(
        TranslateConfig().model,
        embedding_dim=16,
        dropout=0.0,
        encoder=RNNConfig(cell="gru", hidden_size=16, bidirectional=True),
        decoder=RNNConfig(cell="gru", hidden_size=16),
    )
    cfg = TranslateConfig(min_freq=1, model=small, beam_size=2, trainer=TrainerConfig(epochs=2, progress=False))
    task, metrics = Translator.train(
        cfg, slices["train.de"], slices["train.en"], tmp_path / "mt", dev=(slices["val.de"], slices["val.en"])
    )
    assert 0 <= metrics["val"]["bleu"] <= 100 and metrics["val"]["n"] == 40
    rows = [json.loads(line) for line in (tmp_path / "mt" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and set(rows[0]) == {"source", "reference", "translation"}
    sources = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]
    out = task.translate(sources)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    again = rnnkit.load(tmp_path / "mt")
    assert again.translate(sources) == out
    assert again.translate(sources, beam_size=1) == task.translate(sources, beam_size=1)
