"""Tagging task on a CoNLL-2003 slice with a CRF: seqeval scores, predict, save -> load -> same tags."""

from __future__ import annotations

import rnnkit
from rnnkit.tasks.tag import TagConfig, Tagger, read_sentences
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


def test_conll_slice_end_to_end(slices, tmp_path):
    cfg = TagConfig(
        crf=True,
        embedding_dim=16,
        rnn=RNNConfig(hidden_size=16, bidirectional=True),
        trainer=TrainerConfig(epochs=2, lr=5e-3, progress=False, monitor="val_f1", mode="max"),
    )
    task, metrics = Tagger.train(
        cfg, slices["train.conll"], tmp_path / "ner", dev=slices["valid.conll"], test=slices["test.conll"]
    )
    assert {"f1", "precision", "recall", "token_accuracy", "loss"} <= set(metrics["test"])
    written = (tmp_path / "ner" / "predictions.conll").read_text().split("\n\n")
    assert written[0].splitlines()[0].split("\t")[:2] == ["SOCCER", "O"]  # token, gold, predicted
    assert set(task.tags) == {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"}
    sentences = [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    tags = task.predict(sentences)
    assert [len(t) for t in tags] == [4, 2] and all(t in task.tags for s in tags for t in s)
    again = rnnkit.load(tmp_path / "ner")
    assert again.predict(sentences) == tags
    assert again.evaluate(slices["test.conll"])["f1"] == metrics["test"]["f1"]
    (tmp_path / "plain.txt").write_text("EU rejects German call\nPeter Blackburn\n")
    assert again.predict(again.read_tokens(tmp_path / "plain.txt", "text")) == tags


def test_tagger_learns_real_entities(slices, tmp_path):
    """A few epochs on 200 sentences already beat the all-O tagger on token accuracy (entity F1 on the full data
    is a benchmark's job, not a test's)."""
    cfg = TagConfig(
        embedding_dim=32,
        rnn=RNNConfig(hidden_size=32, bidirectional=True),
        dropout=0.2,
        trainer=TrainerConfig(epochs=8, lr=1e-2, progress=False, monitor="val_f1", mode="max"),
    )
    _task, metrics = Tagger.train(cfg, slices["train.conll"], tmp_path / "ner2", dev=slices["valid.conll"])
    gold = [t for s in read_sentences(slices["valid.conll"], cfg) for t in s.tags]
    all_o = gold.count("O") / len(gold)
    assert metrics["val"]["token_accuracy"] > all_o, (metrics, all_o)
