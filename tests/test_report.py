"""``rnnkit inspect``: a report for each of the five tasks on a tiny run, and one-line errors for bad requests."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import random
import re

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rnnkit import EncoderDecoderConfig, RNNConfig
from rnnkit.cli import app
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.inspect.examples import examples_for
from rnnkit.inspect.report import ReportConfig, inspect_run
from rnnkit.tasks import load
from rnnkit.tasks.classify import Classifier, ClassifyConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.lm import LanguageModel, LMConfig
from rnnkit.tasks.tag import TagConfig, Tagger
from rnnkit.tasks.translate import TranslateConfig, Translator
from rnnkit.training.trainer import TrainerConfig

runner = CliRunner()
WORDS = ["the", "a", "dog", "cat", "runs", "sleeps", "big", "small", "red", "blue", "house", "tree"]
EXPECTED = {"Hidden-state heatmap", "Top units by variance", "Memory horizon"}


def _trainer() -> TrainerConfig:
    return TrainerConfig(epochs=1, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs of the five tasks (one epoch on made-up data) and the input files to inspect them with."""
    root = tmp_path_factory.mktemp("inspect")
    rng = random.Random(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and does not thrash a shared machine
    files, found = {}, {}

    series = root / "series.csv"
    series.write_text("t,y\n" + "".join(f"{t},{math.sin(t / 4) + 0.1 * rng.random():.4f}\n" for t in range(90)))
    cfg = ForecastConfig(
        series=SeriesConfig(target=["y"], timestep=12, horizon=3, train=0.6, val=0.2),
        rnn=RNNConfig("lstm", 8),
        trainer=_trainer(),
    )
    Forecaster.train(cfg, series, root / "forecast")
    files["forecast"] = series

    texts = root / "reviews.txt"
    texts.write_text("".join(f"{rng.choice(['pos', 'neg'])} {' '.join(rng.choices(WORDS, k=6))}\n" for _ in range(40)))
    Classifier.train(
        ClassifyConfig(rnn=RNNConfig("rnn_tanh", 8), embedding_dim=8, trainer=_trainer()), texts, root / "classify"
    )
    files["classify"] = texts

    conll = root / "train.conll"
    sentences = [[(w, "B-X" if w in ("dog", "cat") else "O") for w in rng.choices(WORDS, k=5)] for _ in range(30)]
    conll.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")
    tag_cfg = TagConfig(rnn=RNNConfig("gru", 8, bidirectional=True), embedding_dim=8, trainer=_trainer())
    Tagger.train(tag_cfg, conll, root / "tag")
    files["tag"] = conll

    src, tgt = root / "train.de", root / "train.en"
    pairs = [rng.choices(WORDS, k=4) for _ in range(40)]
    src.write_text("".join(" ".join(p) + "\n" for p in pairs))
    tgt.write_text("".join(" ".join(reversed(p)) + "\n" for p in pairs))
    model = EncoderDecoderConfig(
        embedding_dim=8, encoder=RNNConfig("gru", 8, bidirectional=True), decoder=RNNConfig("gru", 8)
    )
    for name, kind in (("translate", "bahdanau"), ("translate_plain", "none")):
        mt = dataclasses.replace(model, attention=kind)
        cfg = TranslateConfig(model=mt, min_freq=1, beam_size=1, trainer=_trainer())
        Translator.train(cfg, src, tgt, root / name)
    files["translate"] = src

    book = root / "book.txt"
    book.write_text(" ".join(rng.choices(WORDS, k=600)))
    cfg = LMConfig(timestep=40, batch_size=4, embedding_dim=8, rnn=RNNConfig("mingru", 16), trainer=_trainer())
    LanguageModel.train(cfg, book, root / "lm")
    files["lm"] = book
    for name in files:
        found[name] = (root / name, files[name])
    found["translate_plain"] = (root / "translate_plain", src)
    yield found
    torch.set_num_threads(threads)


@pytest.mark.parametrize("task", ["forecast", "classify", "tag", "translate", "lm"])
def test_the_report_renders_for_each_task_and_names_every_figure(task, runs, tmp_path):
    run, data = runs[task]
    numbers = inspect_run(run, tmp_path / "out", data=data, cfg=ReportConfig(example=1, examples=8))
    page = (tmp_path / "out" / "report.html").read_text()
    saved = json.loads((tmp_path / "out" / "inspect.json").read_text())
    assert saved["figures"] == numbers["figures"] and saved["task"] == task
    expected = set(EXPECTED)
    if task != "classify":  # the classifier here is a vanilla RNN: no gates, no saturation plot
        expected.add("Gate saturation")
    if task == "translate":
        expected.add("Attention map")
    if task != "forecast":
        expected.add(f"Input coloured by unit {saved['unit']['index']}")
    assert set(saved["figures"]) == expected
    for name in saved["figures"]:
        assert f"<h2>{name}</h2>" in page, name
    assert page.count("data:image/png;base64,") == len(expected - {f"Input coloured by unit {saved['unit']['index']}"})
    assert not re.search(r'src="(?!data:)', page), "self-contained: every image is embedded"
    assert 0 <= saved["horizon"]["horizon"] < len(saved["horizon"]["curve"])
    assert saved["example"] == 1 and len(saved["inputs"]) == len(saved["unit"]["values"])
    if task == "translate":
        rows = saved["attention"]["weights"]
        assert len(rows) == len(saved["attention"]["target"]) and len(rows[0]) == len(saved["inputs"])
        assert all(abs(sum(r) - 1) < 1e-4 for r in rows), "attention rows sum to 1"
    if task == "classify":
        assert "no gates" in page
    if task == "forecast":
        assert saved["horizon"]["output"] == "the forecast of y one step ahead" and len(saved["inputs"]) == 12


def test_the_command_line_writes_the_report_with_a_chosen_unit(runs, tmp_path):
    run, _ = runs["lm"]
    out = tmp_path / "lm"
    result = runner.invoke(app, ["inspect", str(run), "--text", "the dog runs to the big red house", "--unit", "3",
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "memory horizon" in result.output and "report.html" in result.output
    saved = json.loads((out / "inspect.json").read_text())
    assert saved["unit"]["index"] == 3 and "Input coloured by unit 3" in saved["figures"]
    again = runner.invoke(app, ["inspect", str(run), "--text", "the dog", "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output


@pytest.mark.parametrize(
    "task, args, message",
    [
        (
            "classify",
            ["--example", "40"],
            "--example 40 is out of range: the data holds 40 texts (choose --example 0..39)",
        ),
        ("tag", ["--unit", "16"], "--unit 16 is out of range: the inspected layer's output has 16 units"),
        ("lm", ["--text", "ZZZQQQ"], "knows none of the 6 tokens of example 0"),
        ("classify", ["--attention"], "attention maps are for translate runs"),
        ("translate_plain", ["--attention"], "trained without attention; retrain with --attention general"),
        ("forecast", ["--text", "1 2 3"], "a forecaster reads a series: give --data"),
        ("lm", ["--examples", "0"], "--examples 0"),
        (
            "translate",
            ["--layer", "dec"],
            "no recurrent layer 'dec' (--layer dec); choose --layer from encoder, decoder",
        ),
        (
            "translate",
            ["--layer", "attention"],
            "(--layer attention) is a BahdanauAttention, not a recurrent layer; choose --layer",
        ),
    ],
)
def test_bad_requests_are_one_line_errors_naming_the_fix(task, args, message, runs, tmp_path):
    run, data = runs[task]
    given = args if "--text" in args else ["--data", str(data), *args]
    result = runner.invoke(app, ["inspect", str(run), *given, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(" ".join(lines)) < 400 and lines[0].startswith("error:"), result.output
    assert message in " ".join(result.output.split()), result.output


def _panel_run(root, **options):
    """A saved global forecaster (not trained) over two series of very different scales, and its data."""
    rows = ["id,t,y,region"]
    for name, level, region in (("a_small", 10.0, "north"), ("b_large", 1000.0, "south")):
        rows += [f"{name},{t},{level + level / 10 * math.sin(t / 3):.3f},{region}" for t in range(60)]
    data = root / "panel.csv"
    data.write_text("\n".join(rows) + "\n")
    series = SeriesConfig(target=["y"], time_column="t", series_id="id", static=["region"], timestep=12, horizon=2)
    cfg = ForecastConfig(series=series, rnn=RNNConfig("lstm", 4), **options)
    task = Forecaster.build(cfg, Forecaster.split(cfg, Forecaster.read(cfg, data)).train)
    task.save(root / "run" / "model")
    return root / "run", data, pd.read_csv(data)


def test_a_panel_forecaster_is_shown_in_each_series_units(tmp_path):
    run, data, raw = _panel_run(tmp_path)
    last = 2 * (60 - 12 - 2 + 1) - 1  # the last window of the second series
    task = load(run, "cpu")
    x, f, _ = task.prepare(data).windows("all").tensors()  # the forecaster's own windows: scaled per series
    chosen = examples_for(task, data, None, last, 4).chosen
    torch.testing.assert_close(chosen, (x[last:], f[last:]))  # what the inspected model reads, statics included
    saved = inspect_run(run, tmp_path / "out", data=data, cfg=ReportConfig(example=last, examples=4))
    window = raw[raw.id == "b_large"].y.to_numpy()[-14:-2]  # the 12 steps before the last horizon
    np.testing.assert_allclose([float(v) for v in saved["inputs"]], window, rtol=1e-3)
    assert saved["prediction"].startswith("series 'b_large': y, next 2 steps: ")
    ahead = [float(v) for v in saved["prediction"].split(": ")[-1].split(", ")]
    assert all(800 < v < 1200 for v in ahead), saved["prediction"]  # in the large series' units


def test_a_patched_forecaster_is_shown_in_patches(tmp_path):
    run, data, raw = _panel_run(tmp_path, patch=3)
    saved = inspect_run(run, tmp_path / "out", data=data, cfg=ReportConfig(examples=4))
    window = raw.y.to_numpy()[:12]
    assert saved["inputs"] == [f"{v:.4g}" for v in window[2::3]]  # one column per patch, labelled by its last step
    h = saved["horizon"]
    assert h["lag_unit"] == "patch of 3 steps" and len(h["curve"]) == 4
    page = (tmp_path / "out" / "report.html").read_text()
    assert "each column a patch of 3 steps" in page and f"{h['horizon']} patch" in page


def test_a_bahdanau_decoder_is_inspected_without_a_horizon_and_says_why(runs, tmp_path):
    run, data = runs["translate"]  # Bahdanau: the decoder runs one step at a time
    result = runner.invoke(
        app, ["inspect", str(run), "--data", str(data), "--layer", "decoder", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "inspect.json").read_text())
    assert saved["horizon"] is None and "Memory horizon" not in saved["figures"]
    page = (tmp_path / "report.html").read_text()
    assert "one step at a time" in saved["horizon_note"] and html.escape(saved["horizon_note"]) in page
    assert saved["inputs"][0] == "<bos>" and "no memory horizon" in result.output


def test_a_luong_decoder_is_inspected_along_its_own_translation(runs, tmp_path):
    _, src = runs["translate"]
    model = EncoderDecoderConfig(embedding_dim=8, encoder=RNNConfig("gru", 8), decoder=RNNConfig("lstm", 8))
    cfg = TranslateConfig(model=dataclasses.replace(model, attention="general"), min_freq=1)
    task = Translator.build(cfg, Translator.read(cfg, (src, src.with_suffix(".en"))))
    with torch.no_grad():  # wide random weights (not trained): a translation of different words
        for p in task.model.parameters():
            p.normal_(0.0, 0.7)
    task.save(tmp_path / "luong" / "model")
    saved = inspect_run(tmp_path / "luong", tmp_path / "out", data=src, cfg=ReportConfig(example=1, layer="decoder"))
    target = saved["attention"]["target"]  # the model's own translation, one row per decoder step
    assert saved["inputs"] == ["<bos>", *target[:-1]]  # each decoder step reads the word before it
    assert len(saved["horizon"]["curve"]) == len(target) > 1  # teacher-forced on it: every step on the curve
    assert "translation" in saved["horizon"]["output"]
