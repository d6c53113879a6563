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


def tiny(**kw):
    model = dataclasses.replace(
        TranslateConfig().model,
        embedding_dim=32,
        dropout=0.0,
        encoder=RNNConfig(cell="lstm", hidden_size=32, bidirectional=True),
        decoder=RNNConfig(cell="lstm", hidden_size=64),
    )
    return TranslateConfig(model=model, batch_size=16, **kw)


def test_joint_subwords_one_bpe_model_two_vocabularies(slices):
    from rnnkit.data.readers import read_parallel
    from rnnkit.data.text import auto_subword_vocab

    pairs = read_parallel(slices["train.de"], slices["train.en"])
    task = Translator.build(tiny(), pairs)
    assert task.src_tok.to_json() == task.tgt_tok.to_json()  # one BPE model learned on both sides
    assert set(task.src_vocab.itos) != set(task.tgt_vocab.itos)  # but each side keeps the pieces it uses
    words = sum(len(t.split()) for p in pairs for t in p)
    assert task.src_tok.model.get_vocab_size() <= auto_subword_vocab(words) == 1000
    apart = Translator.build(tiny(joint_subwords=False, subword_vocab=600), pairs)
    assert apart.src_tok.to_json() != apart.tgt_tok.to_json()
    assert apart.tgt_tok.model.get_vocab_size() <= 600


def test_selects_the_checkpoint_by_validation_bleu(slices, tmp_path):
    cfg = tiny()
    cfg.trainer = dataclasses.replace(cfg.trainer, epochs=2, progress=False)
    _, metrics = Translator.train(cfg, slices["train.de"], slices["train.en"], tmp_path / "mt")
    assert "best_val_bleu" in metrics["training"]  # the monitor is BLEU of greedy translations of the val pairs
    assert "val_bleu" in (tmp_path / "mt" / "metrics.csv").read_text().splitlines()[0]
    plain = Translator.build(tiny(select_by_bleu=False), [("a b", "c d")])
    assert plain.trainer_config().monitor == "val_loss" and plain.trainer_config().mode == "min"


def test_default_recipe_learns_on_a_multi30k_slice(slices, tmp_path):
    """Subwords, tied embeddings, label smoothing, attention: the loss on training pairs falls well below the
    cross-entropy of the best unigram model of the same pairs, in seconds."""
    import collections
    import math

    from rnnkit.data.readers import read_parallel
    from rnnkit.tasks.base import Task

    cfg = tiny(select_by_bleu=False)
    cfg.trainer = dataclasses.replace(cfg.trainer, epochs=10, lr=1e-2, schedule="constant", progress=False)
    task, _ = Translator.train(cfg, slices["train.de"], slices["train.en"], tmp_path / "mt")
    pairs = read_parallel(slices["train.de"], slices["train.en"])[:100]
    loss = Task.score(task, task.loader(pairs, train=False))["loss"]
    targets = [t for _, y in task._pairs(pairs, None) for t in y[1:]]
    n = len(targets)
    unigram = -sum(c / n * math.log(c / n) for c in collections.Counter(targets).values())
    assert loss < 0.8 * unigram, f"loss {loss:.2f} on training pairs vs unigram entropy {unigram:.2f}"
