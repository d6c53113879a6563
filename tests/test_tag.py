"""Tagging task on a CoNLL-2003 slice with a CRF: seqeval scores, predict, save -> load -> same tags."""

from __future__ import annotations

import pytest

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
    baseline = metrics["test"]["baseline"]["most_frequent_tag_f1"]  # the simple model the report compares with
    assert 0.0 < baseline < 1.0 and "baseline" in metrics["val"]
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


def small(**kw) -> TagConfig:
    """The default recipe (characters, casing, word dropout, constrained CRF) at test size."""
    from rnnkit.layers.char_features import CharConfig

    trainer = TrainerConfig(epochs=12, lr=1e-2, progress=False, monitor="val_f1", mode="max", checkpoint_minutes=None)
    return TagConfig(
        embedding_dim=16,
        casing_dim=4,
        char=CharConfig(dim=8, size=16),
        rnn=RNNConfig(hidden_size=24, bidirectional=True),
        trainer=trainer,
        **kw,
    )


def test_the_recipe_learns_entities_from_200_sentences_in_seconds(slices, tmp_path):
    cfg = small()
    train = Tagger.read(cfg, slices["train.conll"])
    start = Tagger.build(cfg, train).score(Tagger.build(cfg, train).loader(train, train=False))["loss"]
    task, metrics = Tagger.train(cfg, slices["train.conll"], tmp_path / "ner", dev=slices["valid.conll"])
    inp = task.model.cfg.input
    assert inp.char is not None and inp.casing_dim and task.model.crf is not None  # what the default reads
    assert task.score(task.loader(train, train=False))["loss"] < 0.3 * start
    assert metrics["val"]["f1"] > 0.15, metrics["val"]  # it finds entities, not just O
    # the CRF is held to IOB2: no I-X after O or after another type, even where the network would like one
    for tags in task.predict([s.tokens for s in Tagger.read(cfg, slices["test.conll"])]):
        for prev, tag in zip(["O", *tags], tags):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:] and prev != "O", tags


def test_pretrained_vectors_set_the_embeddings_and_survive_save_and_load(slices, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("eu 1 2 3 4\ngerman 5 6 7 8\nzanzibar 9 9 9 9\n")  # lowercase, as the words are looked up
    cfg = small(embeddings=str(vectors))
    task = Tagger.build(cfg, Tagger.read(cfg, slices["train.conll"]))
    assert task.cfg.embedding_dim == 4 and "zanzibar" in task.vocab  # the file's size; its words join the vocabulary
    emb = task.model.input.embedding.weight
    assert emb[task.vocab.stoi["german"]].tolist() == [5, 6, 7, 8]
    task.save(tmp_path / "m")
    again = rnnkit.load(tmp_path / "m")
    assert again.cfg.embedding_dim == 4
    assert again.predict([["EU", "rejects", "Zanzibar"]]) == task.predict([["EU", "rejects", "Zanzibar"]])
    vectors.write_text("eu 1 2 3 4\ngerman 5 6 7\n")
    with pytest.raises(ValueError, match=r"vectors.txt:2: expected a word and 4 numbers"):
        Tagger.build(cfg, Tagger.read(cfg, slices["train.conll"]))


def test_cli_flags_for_the_recipe(slices, tmp_path):
    import json

    from typer.testing import CliRunner

    from rnnkit.cli import app

    args = ["train", "tag", "--data", str(slices["valid.conll"]), "--epochs", "1", "--hidden", "8", "--quiet"]
    result = CliRunner().invoke(app, [*args, "--chars", "none", "--word-dropout", "0.1", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "a" / "model" / "config.json").read_text())["config"]
    assert saved["char"] is None and saved["word_dropout"] == 0.1
    result = CliRunner().invoke(app, [*args, "--chars", "gru", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "--chars: expected cnn, lstm or none, got 'gru'" in result.output
    result = CliRunner().invoke(app, [*args, "--embeddings", str(tmp_path / "no.txt"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and "no.txt: no such file (--embeddings expects" in result.output


def test_the_default_length_gives_a_small_corpus_its_updates_at_the_full_rate(slices, tmp_path):
    """200 sentences are 7 updates an epoch: the default neither stops early nor halves the learning rate before
    1,000 updates, however flat validation F1 is at first (the old rule had halved it 9 times in 20 epochs, F1
    still 0)."""
    import csv
    import dataclasses

    cfg = small()
    cfg.trainer = dataclasses.replace(TagConfig().trainer, max_epochs=8, progress=False, checkpoint_minutes=None)
    assert cfg.trainer.epochs is None and cfg.trainer.min_steps == 1000 and cfg.trainer.plateau_waits
    _task, metrics = Tagger.train(cfg, slices["train.conll"], tmp_path / "ner", dev=slices["valid.conll"])
    assert metrics["training"]["stopped"] == "max_epochs (8) reached", metrics["training"]
    rows = list(csv.DictReader((tmp_path / "ner" / "metrics.csv").open()))
    f1 = [float(r["val_f1"]) for r in rows if r["val_f1"]]
    flat = sum(v <= max(f1[:i]) for i, v in enumerate(f1) if i)  # evaluations the plateau rule would count
    assert flat >= cfg.trainer.plateau_patience + cfg.trainer.early_stopping, f1  # both rules had cause to act
    assert {float(r["lr"]) for r in rows if r["lr"]} == {cfg.trainer.lr}
