"""Classification task on an MR slice (Latin-1, one file per class) and on a CSV; save -> load -> same output."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import rnnkit
from rnnkit.layers.ngram_linear import fit_linear
from rnnkit.layers.ngrams import BagOfNgrams, NgramConfig
from rnnkit.tasks.classify import (
    KEPT_TEMPERATURES,
    MIXES,
    TEMPERATURES,
    Classifier,
    ClassifyConfig,
    calibrated_loss,
    choose_share,
    choose_shares,
    read_examples,
)
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
    data = _rule_csv(tmp_path, n=300, shuffle=True)
    cfg = config(text_column="review", label_column="stars")
    cfg.trainer.epochs = 6
    cfg.trainer.lr = 1e-2
    task, metrics = Classifier.train(cfg, data, tmp_path / "run")
    assert metrics["test"]["accuracy"] > 0.9, metrics
    assert task.predict(["what a superb story", "an awful plot"]) == ["pos", "neg"]
    # the report scores the commonest training label beside the network
    assert metrics["test"]["accuracy"] > metrics["test"]["baseline"]["majority_class_accuracy"] + 0.2, metrics
    base = task.baselines([("a", "pos"), ("b", "pos"), ("c", "neg")], [("x", "pos"), ("y", "neg")])
    assert base == pytest.approx({"majority_class_accuracy": 0.5, "majority_class_macro_f1": 1 / 3})


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


def test_the_ngram_bag_is_mixed_in_only_as_far_as_validation_data_says(slices, tmp_path):
    """The recipe counts a naive-Bayes bag of words and word pairs on the training texts and picks its share on the
    validation texts: the mix never predicts them worse (calibrated cross-entropy) than the network alone (0 is
    among the choices)."""
    cfg = config(encoding="latin-1")
    cfg.trainer.epochs = 3
    files = [slices["mr.pos"], slices["mr.neg"]]
    task, metrics = Classifier.train(cfg, files, tmp_path / "mr", test=[slices["mr_test.pos"], slices["mr_test.neg"]])
    chosen = metrics["training"]["ngrams"]
    assert chosen["mix"] in MIXES and float(task.model.mix) == pytest.approx(chosen["mix"])
    assert chosen["val_calibrated_loss"] <= chosen["val_calibrated_loss_network"]  # 0 (the network alone) was a choice
    assert metrics["val"]["accuracy"] == pytest.approx(chosen["val_accuracy"])  # held out: scored before the refit
    # the mix is then calibrated on the same texts (every temperature the share was judged at was a choice)
    kept = metrics["training"]["calibration"]
    assert float(task.model.temperature) == pytest.approx(kept["temperature"])
    assert kept["val_calibrated_loss"] <= min(chosen["val_calibrated_loss"], kept["val_loss"]) + 1e-6
    assert metrics["val"]["loss"] == pytest.approx(kept["val_calibrated_loss"], abs=1e-5)
    # once the mix is chosen, the bag is counted again over the training and validation texts: here every text of
    # the files (the test part is given apart)
    assert chosen["refit"]
    texts, labels = read_examples(files, cfg)
    counted = BagOfNgrams(len(task.vocab), 2, cfg.ngrams, task.vocab.pad)
    counted.set_words(task.vocab.itos, 4)
    counted.unseen_ids(list(task.model.ngrams.unseen))  # the validation words outside the vocabulary count too
    encoded, index = task.encode(texts, unseen=True), [task.labels.index(y) for y in labels]
    counted.fit(encoded, index)
    fit_linear(counted, encoded, index, cfg.ngrams.linear)  # and the logistic regression over them, fitted again
    counted.scale_(*chosen["scales"])  # the shares of words, character n-grams and regression chosen on validation
    assert torch.equal(task.model.ngrams.weight, counted.weight)
    torch.testing.assert_close(task.model.ngrams.linear, counted.linear)
    again = rnnkit.load(tmp_path / "mr")  # the mix and the counted weights are saved with the model
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés ."]
    np.testing.assert_allclose(again.predict_proba(texts), task.predict_proba(texts), rtol=1e-6, atol=1e-7)
    assert torch.equal(again.model.ngrams.weight, task.model.ngrams.weight)


def test_the_bag_alone_learns_the_easy_rule_by_counting(tmp_path):
    """Words that only ever appear in one class vote for it: the counted bag gets the rule right untrained."""
    cfg = config(text_column="review", label_column="stars")
    data = Classifier.read(cfg, _rule_csv(tmp_path))
    task = Classifier.build(cfg, data)
    task.model.mix.fill_(100.0)  # the bag dominates the (untrained) network
    assert task.predict(["what a superb story", "an awful plot", "lovely", "dull"]) == ["pos", "neg", "pos", "neg"]


def test_pretrained_vectors_for_the_classifier(tmp_path):
    (tmp_path / "vec.txt").write_text("2 3\nsuperb 1 0 0\nzanzibar 0 1 0\n")  # word2vec header
    cfg = config(text_column="review", label_column="stars", embeddings=str(tmp_path / "vec.txt"))
    task = Classifier.build(cfg, Classifier.read(cfg, _rule_csv(tmp_path)))
    assert task.cfg.embedding_dim == 3 and "zanzibar" in task.vocab
    assert task.model.input.embedding.weight[task.vocab.stoi["superb"]].tolist() == [1, 0, 0]


def _rule_csv(tmp_path, n: int = 200, shuffle: bool = False):
    """A CSV of ``n`` reviews: five neutral words and one word that decides the label (anywhere with ``shuffle``)."""
    rng = np.random.default_rng(0)
    good, bad = ["great", "superb", "lovely", "fine"], ["awful", "dull", "poor", "bad"]
    rows = []
    for _ in range(n):
        y = int(rng.integers(2))
        words = [*rng.choice(["the", "film", "was", "a", "plot", "story"], 5), str(rng.choice(good if y else bad))]
        if shuffle:
            rng.shuffle(words)
        rows.append(f'"{" ".join(words)}",{"pos" if y else "neg"}')
    (tmp_path / "rule.csv").write_text("review,stars\n" + "\n".join(rows) + "\n")
    return tmp_path / "rule.csv"


def test_default_recipe_learns_on_an_mr_slice(slices, tmp_path):
    """The default recipe (BiLSTM, max pooling, the n-gram bag mixed in on validation, the length adapted to the
    data) at a small width on 360 training reviews: the network's own loss on them falls well below chance
    (ln 2) and the held-out accuracy beats chance, in seconds."""
    import dataclasses
    import math

    cfg = ClassifyConfig(
        encoding="latin-1", embedding_dim=32, rnn=RNNConfig(cell="lstm", hidden_size=32, bidirectional=True)
    )
    cfg.trainer = dataclasses.replace(cfg.trainer, progress=False, checkpoint_minutes=None)
    assert cfg.trainer.epochs is None  # the default length: until validation accuracy stops improving
    files, test = [slices["mr.pos"], slices["mr.neg"]], [slices["mr_test.pos"], slices["mr_test.neg"]]
    task, metrics = Classifier.train(cfg, files, tmp_path / "mr", test=test)
    assert metrics["test"]["accuracy"] >= 0.65, metrics["test"]
    train = Classifier.split(cfg, Classifier.read(cfg, files), None, Classifier.read(cfg, test)).train
    assert len(train) == 360  # 400 reviews, 40 held out for validation
    task.model.mix.fill_(0.0)  # the network alone (the bag was counted on these very texts)...
    task.model.temperature.fill_(1.0)  # ...as trained (the temperature calibrates the mix)
    loss = task.score(task.loader(train, train=False))["loss"]
    assert loss < 0.5 * math.log(2), f"the network's loss on its {len(train)} training texts: {loss:.3f}"


def test_calibrated_loss_is_the_best_cross_entropy_over_the_temperatures():
    torch.manual_seed(0)
    honest = 2.0 * torch.randn(3000, 3)  # the scores of a calibrated model: labels drawn from softmax(scores)...
    y = torch.multinomial(torch.softmax(honest, -1), 1)[:, 0]
    loss, t = calibrated_loss(8.0 * honest, y)  # ...made 8 times overconfident
    assert loss == pytest.approx(min(float(nn.functional.cross_entropy(s * 8.0 * honest, y)) for s in TEMPERATURES))
    assert 1 / 8 / 1.5 < t < 1 / 8 * 1.5  # the temperature undoes the overconfidence
    assert loss < float(nn.functional.cross_entropy(8.0 * honest, y))


def test_the_share_follows_what_predicts_the_validation_labels():
    """An informative bag beside a network that guesses gets a large share; a bag of noise beside a good network
    gets none."""
    torch.manual_seed(0)
    y = torch.randint(0, 2, (400,))
    signal = 3.0 * (2.0 * nn.functional.one_hot(y, 2) - 1) + torch.randn(400, 2)
    noise = 5.0 * torch.randn(400, 2)
    assert choose_share(noise, signal, y) >= 5.0
    assert choose_share(signal, noise, y) == 0.0
    words, chars = choose_shares(noise, noise.flip(0), signal, y)  # two bags: the informative one gets the share
    assert words == 0.0 and chars >= 5.0
    shares = choose_shares(noise, noise.flip(0), noise.flip(1), y, signal)  # three: the regression's scores
    assert shares[:2] == (0.0, 0.0) and shares[2] >= 5.0


def test_a_run_saved_before_character_ngrams_loads_as_it_was(tmp_path):
    """Its config has no 'chars' (the default now adds them) and its bag's weights no rows for them."""
    cfg = config(text_column="review", label_column="stars")
    cfg.ngrams.chars, cfg.ngrams.linear = None, None
    task = Classifier.build(cfg, Classifier.read(cfg, _rule_csv(tmp_path)))
    task.model.mix.fill_(1.0)
    task.save(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["artifacts"]["ngram_chars"], saved["config"]["ngrams"]["chars"], saved["config"]["ngrams"]["char_buckets"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    again = rnnkit.load(tmp_path / "old")
    assert again.cfg.ngrams.chars is None and again.model.ngrams.weight.shape == task.model.ngrams.weight.shape
    texts = ["what a superb story", "an awful plot"]
    np.testing.assert_allclose(again.predict_proba(texts), task.predict_proba(texts), rtol=1e-6, atol=1e-7)


def test_an_unseen_word_reaches_the_bag_by_its_characters(tmp_path):
    """'superbly' and 'dullness' never occur in training: the network reads <unk>, the bag their character n-grams,
    shared with 'superb' and 'dull'. With ``ngrams.unseen = 0`` (and in runs saved before) they are <unk> for both."""
    cfg = config(text_column="review", label_column="stars", ngrams=NgramConfig(linear=None))  # (as runs before)
    data = Classifier.read(cfg, _rule_csv(tmp_path))
    task = Classifier.build(cfg, data)
    task.model.mix.fill_(100.0)  # the bag dominates the (untrained) network
    texts = ["superbly", "dullness", "lovelier", "awfully"]
    assert task.predict(texts) == ["pos", "neg", "pos", "neg"]
    assert min(task.encode(texts, unseen=True))[0] >= len(task.vocab) and task.encode(texts)[0] == [task.vocab.unk]
    task.save(tmp_path / "run")
    again = rnnkit.load(tmp_path / "run")
    np.testing.assert_allclose(again.predict_proba(texts), task.predict_proba(texts), rtol=1e-6, atol=1e-7)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    del saved["artifacts"]["ngram_unseen"], saved["config"]["ngrams"]["unseen"]  # as a run saved before
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    old = rnnkit.load(tmp_path / "run")
    assert old.cfg.ngrams.unseen == 0
    probs = old.predict_proba(texts)
    assert np.allclose(probs, probs[0])  # every text is one <unk>
    closed = Classifier.build(config(text_column="review", label_column="stars", ngrams=NgramConfig(unseen=0)), data)
    assert closed.encode(texts, unseen=True) == [[closed.vocab.unk]] * 4


def _noisy_csvs(tmp_path) -> list:
    """Train, dev and test CSVs of :func:`_rule_csv`'s rule with a quarter of the labels flipped: a network
    trained on them long enough is overconfident."""
    rng = np.random.default_rng(1)
    frame = pd.read_csv(_rule_csv(tmp_path, n=500, shuffle=True))
    flip = rng.random(len(frame)) < 0.25
    frame.loc[flip, "stars"] = frame.loc[flip, "stars"].map({"pos": "neg", "neg": "pos"})
    paths = [tmp_path / f"{name}.csv" for name in ("train", "dev", "test")]
    for path, part in zip(paths, (frame[:300], frame[300:400], frame[400:])):
        part.to_csv(path, index=False)
    return paths


def test_the_temperature_chosen_on_validation_data_is_kept(tmp_path):
    """Without the n-gram bag too, the scores' temperature that best predicts the validation labels (cross-entropy)
    is kept in the model and saved with it; the report's losses are the calibrated model's. Made overconfident
    (its logits 8 times too large), the trained network gets a temperature below 1 that lowers the validation and
    test cross-entropy and changes no prediction."""
    train, dev, test = _noisy_csvs(tmp_path)
    cfg = config(text_column="review", label_column="stars", ngrams=None)
    cfg.trainer.epochs, cfg.trainer.lr = 12, 1e-2
    task, metrics = Classifier.train(cfg, train, tmp_path / "run", dev=dev, test=test)
    kept = metrics["training"]["calibration"]
    assert kept["temperature"] in KEPT_TEMPERATURES
    assert float(task.model.temperature) == pytest.approx(kept["temperature"])
    assert kept["val_calibrated_loss"] <= kept["val_loss"]
    assert metrics["val"]["loss"] == pytest.approx(kept["val_calibrated_loss"], abs=1e-5)
    texts, labels = read_examples(test, cfg)
    assert metrics["test"]["loss"] == pytest.approx(task.evaluate(texts, labels)["loss"])
    again = rnnkit.load(tmp_path / "run")
    assert float(again.model.temperature) == float(task.model.temperature)
    np.testing.assert_allclose(again.predict_proba(texts), task.predict_proba(texts), rtol=1e-6, atol=1e-7)

    last = task.model.head.net[-1]  # the head's output layer
    with torch.no_grad():
        last.weight.mul_(8.0), last.bias.mul_(8.0)
    val = task.loader(Classifier.read(cfg, dev), train=False)
    task.model.temperature.fill_(1.0)
    raw, raw_test, before = task.score(val), task.evaluate(texts, labels), task.predict_proba(texts)
    with torch.no_grad():
        z = torch.cat([task.model(x, n) for x, n, _ in val]).double()
    y = torch.cat([y for _, _, y in val])
    kept = task.calibrate(val)
    t = float(task.model.temperature)
    calibrated, after = task.score(val), task.predict_proba(texts)
    assert t == pytest.approx(kept["temperature"]) and t < 1 and kept["val_loss"] == pytest.approx(raw["loss"])
    assert calibrated["loss"] < raw["loss"] and calibrated["accuracy"] == raw["accuracy"]
    assert calibrated["loss"] == pytest.approx(calibrated_loss(z, y, KEPT_TEMPERATURES)[0], abs=1e-5)
    assert calibrated["loss"] == pytest.approx(kept["val_calibrated_loss"], abs=1e-5)
    assert np.array_equal(after.argmax(1), before.argmax(1)) and np.abs(after - before).max() > 0.01
    assert task.evaluate(texts, labels)["loss"] < raw_test["loss"]


def test_a_run_saved_before_the_temperature_loads_with_1(tmp_path):
    """Its weights hold no ``temperature``: it loads, and predicts exactly as it did (the scores times 1)."""
    cfg = config(text_column="review", label_column="stars")
    task = Classifier.build(cfg, Classifier.read(cfg, _rule_csv(tmp_path)))
    task.model.mix.fill_(1.0)
    task.save(tmp_path / "old")
    weights = load_file(tmp_path / "old" / "model.safetensors")
    del weights["temperature"]
    save_file(weights, tmp_path / "old" / "model.safetensors", metadata={"format": "pt"})
    again = rnnkit.load(tmp_path / "old")
    texts = ["what a superb story", "an awful plot", "dull"]
    assert float(again.model.temperature) == 1.0
    assert np.array_equal(again.predict_proba(texts), task.predict_proba(texts))
