"""Classification task on an MR slice (Latin-1, one file per class) and on a CSV; save -> load -> same output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rnnkit
from rnnkit.tasks.classify import Classifier, ClassifyConfig
from rnnkit.topologies.base import RNNConfig
from rnnkit.training.trainer import TrainerConfig


def config(**kw) -> ClassifyConfig:
    return ClassifyConfig(
        rnn=RNNConfig(cell="gru", hidden_size=16, bidirectional=True),
        embedding_dim=16,
        trainer=TrainerConfig(epochs=2, progress=False, monitor="val_accuracy", mode="max"),
        **kw,
    )


def test_mr_slice_end_to_end(slices, tmp_path):
    cfg = config(encoding="latin-1")
    files = [slices["mr.pos"], slices["mr.neg"]]
    task, metrics = Classifier.train(cfg, files, tmp_path / "mr", test=[slices["mr_test.pos"], slices["mr_test.neg"]])
    assert set(metrics) == {"val", "test", "training"} and metrics["test"]["n"] == 100
    assert metrics["training"]["stopped"] == "epochs (2) reached" and metrics["training"]["epochs"] == 2
    assert 0 <= metrics["test"]["accuracy"] <= 1 and task.labels == ["neg", "pos"]
    table = pd.read_csv(tmp_path / "mr" / "predictions.csv")
    assert list(table.columns) == ["text", "gold", "label", "p_neg", "p_pos"] and len(table) == 100
    assert (table["gold"] == table["label"]).mean() == pytest.approx(metrics["test"]["accuracy"])
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés ."]
    probs = task.predict_proba(texts)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1)
    again = rnnkit.load(tmp_path / "mr")
    np.testing.assert_allclose(again.predict_proba(texts), probs, rtol=1e-6, atol=1e-7)
    assert again.evaluate(
        *__import__("rnnkit").tasks.classify.read_examples([slices["mr_test.pos"], slices["mr_test.neg"]], cfg)
    )["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_csv_input_learns_an_easy_rule(tmp_path):
    rng = np.random.default_rng(0)
    good, bad = ["great", "superb", "lovely", "fine"], ["awful", "dull", "poor", "bad"]
    rows = []
    for _ in range(300):
        y = int(rng.integers(2))
        words = [
            *list(rng.choice(["the", "film", "was", "a", "plot", "story"], 5)),
            str(rng.choice(good if y else bad)),
        ]
        rng.shuffle(words)
        rows.append(f'"{" ".join(words)}",{"pos" if y else "neg"}')
    (tmp_path / "r.csv").write_text("review,stars\n" + "\n".join(rows) + "\n")
    cfg = config(text_column="review", label_column="stars")
    cfg.trainer.epochs = 6
    cfg.trainer.lr = 1e-2
    task, metrics = Classifier.train(cfg, tmp_path / "r.csv", tmp_path / "run")
    assert metrics["test"]["accuracy"] > 0.9, metrics
    assert task.predict(["what a superb story", "an awful plot"]) == ["pos", "neg"]


def test_bad_input(tmp_path, slices):
    with pytest.raises(ValueError, match=r"mr.pos:\d+: not valid utf-8 .* pass the file's encoding"):
        Classifier.train(config(), [slices["mr.pos"], slices["mr.neg"]], tmp_path / "a")
    (tmp_path / "one.csv").write_text("text,label\nhello,a\nworld,a\n")
    with pytest.raises(ValueError, match="has 1 label"):
        Classifier.train(config(val_fraction=0, test_fraction=0), tmp_path / "one.csv", tmp_path / "b")
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['label'\]"):
        Classifier.train(config(label_column="label"), _csv(tmp_path), tmp_path / "c")


def _csv(tmp_path):
    (tmp_path / "x.csv").write_text("text,stars\nok,1\n")
    return tmp_path / "x.csv"
