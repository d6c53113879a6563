"""ONNX export of the five tasks from run directories (real held-out inputs in the verification), and
OnnxPredictor: the tasks' predictions with every neural computation in onnxruntime equal PyTorch's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")

from rnnkit.cli import app
from rnnkit.data.timeseries import SeriesConfig
from rnnkit.decoding import SamplingConfig
from rnnkit.export import ExportConfig, OnnxPredictor, export_onnx
from rnnkit.export.plans import make_plan
from rnnkit.export.predictor import viterbi
from rnnkit.layers.char_features import CharConfig
from rnnkit.layers.crf import LinearChainCRF
from rnnkit.tasks.classify import Classifier, ClassifyConfig
from rnnkit.tasks.forecast import ForecastConfig, Forecaster
from rnnkit.tasks.lm import LanguageModel, LMConfig
from rnnkit.tasks.tag import TagConfig, Tagger
from rnnkit.tasks.translate import TranslateConfig, Translator
from rnnkit.topologies import EncoderDecoderConfig, RNNConfig

runner = CliRunner()
SENTENCES = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["Peter", "Blackburn"]]
GERMAN = ["Ein Hund rennt durch den Schnee.", "Zwei Männer spielen Fußball.", "Eine Frau liest ein Buch."]


def _spread(model: torch.nn.Module) -> None:
    """Wider random weights: an untrained model whose outputs differ from token to token (a real test of search)."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.7)


def _build(name: str, slices: dict) -> object:
    """Tiny tasks built (not trained) on slices of the real data, with their held-out predictions beside them."""
    torch.manual_seed(0)
    if name == "forecast":
        series = SeriesConfig(target=["OT"], time_column="date", past_covariates=["HUFL"], calendar=["hour"])
        series.timestep, series.horizon = 24, 4
        cfg = ForecastConfig(series=series, rnn=RNNConfig(cell="lstm", hidden_size=8, num_layers=2))
        return Forecaster.build(cfg, Forecaster.split(cfg, Forecaster.read(cfg, slices["etth1.csv"])).train)
    if name == "classify":
        cfg = ClassifyConfig(embedding_dim=8, rnn=RNNConfig(cell="minlstm", hidden_size=8), pooling="last")
        cfg.encoding = "latin-1"
        task = Classifier.build(cfg, Classifier.read(cfg, [slices["mr.pos"], slices["mr.neg"]]))
        task.model.temperature.fill_(0.4)  # calibrated after training: the graphs scale the logits as the model
        return task
    if name == "tag":
        cfg = TagConfig(embedding_dim=8, rnn=RNNConfig(cell="gru", hidden_size=8, bidirectional=True), crf=True)
        cfg.casing_dim, cfg.char = 4, CharConfig(dim=4, size=8)  # the recipe's word features, at test size
        task = Tagger.build(cfg, Tagger.read(cfg, slices["train.conll"]))
        _spread(task.model)
        return task
    if name == "lm":
        cfg = LMConfig(embedding_dim=8, rnn=RNNConfig(cell="mingru", hidden_size=16, num_layers=2), timestep=32)
        return LanguageModel.build(cfg, LanguageModel.read(cfg, slices["shakespeare.txt"]))
    model = EncoderDecoderConfig(
        embedding_dim=8,
        encoder=RNNConfig(cell="gru", hidden_size=8, bidirectional=True),
        decoder=RNNConfig(cell="gru", hidden_size=8),
        attention="bahdanau",
    )
    cfg = TranslateConfig(model=model, min_freq=1)
    task = Translator.build(cfg, Translator.read(cfg, (slices["train.de"], slices["train.en"])))
    _spread(task.model)
    return task


def _save_run(task: object, run, slices: dict) -> None:
    """A run directory as training leaves it: model/ and the held-out predictions the export reads."""
    task.save(run / "model")
    if task.name == "classify":
        texts = slices["mr_test.pos"].read_text(encoding="latin-1").splitlines()[:20]
        task.prediction_table(texts).to_csv(run / "predictions.csv", index=False)
    elif task.name == "tag":
        tokens = [s.tokens for s in Tagger.read(task.cfg, slices["valid.conll"])[:20]]
        (run / "predictions.conll").write_text(task.to_conll(tokens, task.predict(tokens)))
    elif task.name == "translate":
        rows = [{"source": s, "reference": "", "translation": ""} for s in slices["val.de"].read_text().splitlines()]
        (run / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    elif task.name == "lm":
        (run / "samples.txt").write_text("# prompt\n" + slices["shakespeare.txt"].read_text()[-600:])


@pytest.fixture(scope="module")
def runs(slices, tmp_path_factory) -> dict:
    """Each task saved as a run and exported from it (verified on random and real inputs) once."""
    out = {}
    for name in ("forecast", "classify", "tag", "lm", "translate"):
        run = tmp_path_factory.mktemp(name)
        task = _build(name, slices)
        _save_run(task, run, slices)
        data = slices["etth1.csv"] if name == "forecast" else None
        out[name] = (task, export_onnx(run, cfg=ExportConfig(data=data)))
    return out


GRAPHS = {
    "forecast": {"sequence.onnx", "step.onnx"},
    "classify": {"sequence.onnx", "step.onnx", "head.onnx"},
    "tag": {"sequence.onnx", "crf.json"},
    "lm": {"sequence.onnx", "step.onnx"},
    "translate": {"encoder.onnx", "decoder_step.onnx"},
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_every_task_exports_verified_on_random_and_real_inputs(runs, name):
    _, result = runs[name]
    assert result.directory.name == "onnx"  # default: RUN/onnx
    assert GRAPHS[name] | {"config.json", "verify.json", "README.txt"} <= set(result.files)
    report = json.loads((result.directory / "verify.json").read_text())
    assert report["passed"] and report["real_inputs"] != "none (random inputs only)"
    kinds = {(c["graph"], c["inputs"]) for c in report["checks"]}
    first = "encoder" if name == "translate" else "sequence"
    assert (first, "real") in kinds and (first, "random") in kinds
    if name not in ("forecast", "tag"):  # graphs run together (no step graph: bidirectional; whole windows)
        assert any(g.startswith("composite") for g in report["max_abs_error"])
    longest = max(c["length"] or 0 for c in report["checks"] if c["inputs"] == "random")
    assert longest > (report["train_length"] or 0)  # longer than anything seen in training (a step graph: driven)
    for graph, errors in report["max_abs_error"].items():
        assert max(errors.values()) <= 1e-5, (graph, errors)
    readme = (result.directory / "README.txt").read_text()
    assert "State layout" in readme and all(g in readme for g in GRAPHS[name] if g.endswith(".onnx"))


def test_forecast_predictions_from_onnxruntime_equal_pytorch(runs, slices):
    task, result = runs["forecast"]
    predictor = OnnxPredictor(result.directory)
    want, got = task.predict(slices["etth1.csv"]), predictor.predict(slices["etth1.csv"])
    assert list(got.columns) == list(want.columns) and len(got) == 4
    np.testing.assert_allclose(got.drop(columns="date").to_numpy(), want.drop(columns="date").to_numpy(), atol=1e-4)


def test_classify_and_tag_predictions_from_onnxruntime_equal_pytorch(runs, slices):
    task, result = runs["classify"]
    texts = slices["mr_test.neg"].read_text(encoding="latin-1").splitlines()[:30]
    predictor = OnnxPredictor(result.directory)
    np.testing.assert_allclose(predictor.predict_proba(texts), task.predict_proba(texts), atol=1e-5)
    assert predictor.predict(texts) == task.predict(texts)
    tagger, result = runs["tag"]
    sentences = SENTENCES + [s.tokens for s in Tagger.read(tagger.cfg, slices["test.conll"])[:30]]
    assert OnnxPredictor(result.directory).predict(sentences) == tagger.predict(sentences)  # CRF Viterbi in numpy


def test_a_classifier_with_its_ngram_bag_mixed_in_exports_the_bag(slices, tmp_path):
    """The default recipe's classifier adds mix x the naive-Bayes bag's votes to its logits: the sequence graph
    holds the bag too (hashed word pairs and character n-grams, distinct ids), so onnxruntime's probabilities are
    the model's."""
    torch.manual_seed(0)
    cfg = ClassifyConfig(embedding_dim=8, rnn=RNNConfig(cell="gru", hidden_size=8, bidirectional=True), pooling="max")
    cfg.encoding = "latin-1"
    task = Classifier.build(cfg, Classifier.read(cfg, [slices["mr.pos"], slices["mr.neg"]]))
    assert task.model.ngrams.char_ids.shape[1] > 1  # the words' character n-grams vote too (a table in the graph)
    task.model.mix.fill_(1.5)
    texts = slices["mr_test.neg"].read_text(encoding="latin-1").splitlines()[:30]
    bag = task.predict_proba(texts)
    task.model.mix.fill_(0.0)
    assert np.abs(task.predict_proba(texts) - bag).max() > 0.1  # the bag moves the answers
    task.model.mix.fill_(1.5)
    task.model.temperature.fill_(0.6)  # the mix's calibration: the graph scales the bag's votes too
    _save_run(task, tmp_path, slices)
    result = export_onnx(tmp_path, cfg=ExportConfig())
    assert result.report["passed"] and max(result.report["max_abs_error"]["sequence"].values()) <= 1e-5
    # the graph reads words outside the vocabulary as <unk> (it has no input for their character n-grams, which
    # task.predict_proba gives the bag): its probabilities are the model's on the closed vocabulary's ids
    ids = task.encode(texts)
    x = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for i, row in enumerate(ids):
        x[i, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        closed = torch.softmax(task.model.eval()(x, torch.tensor([len(r) for r in ids])), -1).numpy()
    np.testing.assert_allclose(OnnxPredictor(result.directory).predict_proba(texts), closed, atol=1e-5)
    assert np.abs(closed - bag).max() > 0  # (task.predict_proba: the unseen words' characters vote too)


def test_numpy_viterbi_equals_the_crf():
    crf = LinearChainCRF(5)
    with torch.no_grad():
        crf.transitions.normal_()
    scores = torch.randn(6, 9, 5)
    mask = torch.arange(9)[None, :] < torch.tensor([9, 1, 4, 9, 2, 7])[:, None]
    params = {"transitions": crf.transitions.tolist(), "start": crf.start.tolist(), "end": crf.end.tolist()}
    assert (viterbi(scores.numpy(), mask.numpy(), params) == crf.decode(scores, mask)[0].numpy()).all()


def test_generation_from_onnxruntime_equals_pytorch(runs):
    task, result = runs["lm"]
    predictor = OnnxPredictor(result.directory)
    greedy = SamplingConfig(temperature=0)
    assert predictor.generate("ROMEO:", 60, greedy) == task.generate("ROMEO:", 60, greedy)
    sampled = SamplingConfig(temperature=0.8, top_k=10)
    assert predictor.generate("JULIET:", 60, sampled, seed=3) == task.generate("JULIET:", 60, sampled, seed=3)


@pytest.mark.parametrize("beam", [1, 4])
def test_translations_from_onnxruntime_equal_pytorch(runs, slices, beam):
    task, result = runs["translate"]
    sources = GERMAN + slices["val.de"].read_text().splitlines()[:12]
    want = task.translate(sources, beam)
    assert len(set(want)) > 3  # the model says different things, so equality below means something
    assert OnnxPredictor(result.directory).translate(sources, beam) == want


def test_cli_export_and_its_one_line_errors(runs, tmp_path):
    _, result = runs["classify"]
    run = result.directory.parent
    out = runner.invoke(app, ["export", str(run), "--format", "onnx", "--out", str(tmp_path / "x"), "--graphs", "step"])
    assert out.exit_code == 0, out.output
    assert "step.onnx" in out.output and sorted(p.name for p in (tmp_path / "x").glob("*.onnx")) == ["step.onnx"]
    for args, message in [
        (["--format", "tflite"], "unsupported export format 'tflite'; expected --format onnx"),
        (["--opset", "9"], "--opset 9"),
        (["--out", str(tmp_path / "x")], "already holds files; pass --overwrite"),
    ]:
        bad = runner.invoke(app, ["export", str(run), *args])
        assert bad.exit_code == 1 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    lm_run = runs["lm"][1].directory.parent
    bad = runner.invoke(app, ["export", str(lm_run), "--graphs", "encoder", "--out", str(tmp_path / "l")])
    assert bad.exit_code == 1 and "lm has no graph 'encoder' (--graphs); its graphs are sequence, step" in bad.stderr
    tag_run = runs["tag"][1].directory.parent
    bad = runner.invoke(app, ["export", str(tag_run), "--graphs", "step", "--out", str(tmp_path / "t")])
    assert bad.exit_code == 1 and "bidirectional layer has no step graph" in bad.stderr


def test_forecast_real_windows_and_config_travel_with_the_graphs(runs):
    task, result = runs["forecast"]
    config = json.loads((result.directory / "config.json").read_text())
    assert config["task"] == "forecast" and config["artifacts"]["columns"] == task.columns
    real = [c for c in json.loads((result.directory / "verify.json").read_text())["checks"] if c["inputs"] == "real"]
    assert {c["batch"] for c in real} == {1, 8} and {c["length"] for c in real} == {24}


def test_an_export_never_replaces_a_run(runs, tmp_path, monkeypatch):
    _, result = runs["lm"]
    run = result.directory.parent
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for out in (run, run / "model"):  # the run itself, its model directory
        with pytest.raises(ValueError, match="holds a training run or a saved model") as info:
            export_onnx(run, out, ExportConfig(overwrite=True))
        assert "\n" not in str(info.value)
    monkeypatch.chdir(run)
    bad = runner.invoke(app, ["export", str(run), "--out", ".", "--overwrite"])
    assert bad.exit_code == 1 and "holds a training run or a saved model" in bad.stderr and "--out" in bad.stderr, (
        bad.stderr
    )
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing removed, nothing added


def test_exporting_a_loaded_task_leaves_it_as_it_was(runs, tmp_path):
    import copy

    task = copy.deepcopy(runs["classify"][0])
    task.model.double().train()
    with pytest.raises(ValueError, match="classify has no graph 'encoder'"):  # fails after preparing the model
        export_onnx(task, tmp_path, ExportConfig(graphs=("encoder",)))
    assert task.model.training and all(p.dtype == torch.float64 for p in task.model.parameters())


def _panel(tmp_path, **options) -> tuple[object, object]:
    """A global forecaster (not trained) over two series of very different scales with a static covariate."""
    rows = ["id,t,y,region"]
    for name, level, region in (("small", 10.0, "north"), ("large", 1000.0, "south")):
        rows += [f"{name},{t},{level + level / 10 * np.sin(t / 3):.3f},{region}" for t in range(60)]
    data = tmp_path / "panel.csv"
    data.write_text("\n".join(rows) + "\n")
    series = SeriesConfig(target=["y"], time_column="t", series_id="id", static=["region"], timestep=12, horizon=2)
    cfg = ForecastConfig(series=series, rnn=RNNConfig(cell="gru", hidden_size=4), **options)
    return Forecaster.build(cfg, Forecaster.split(cfg, Forecaster.read(cfg, data)).train), data


def test_a_panel_forecasters_real_windows_are_scaled_per_series(tmp_path):
    task, data = _panel(tmp_path)
    xs, fs, _ = task.prepare(data).windows("all").tensors()  # the forecaster's own windows: per-series scalers
    real = make_plan(task, ("sequence",), None, data).real["sequence"]
    torch.testing.assert_close(real[0]["x"], xs[-1:])  # the last window, of the 'large' series
    torch.testing.assert_close(real[0]["future"], fs[-1:])  # its static covariates as in training


def test_a_patched_forecaster_exports_a_step_graph_over_one_patch(tmp_path):
    import onnx

    task, _ = _panel(tmp_path, patch=3)
    result = export_onnx(task, tmp_path / "onnx", ExportConfig(graphs=("step",), batch_sizes=(1,)))
    assert result.report["passed"] and "step.onnx" in result.files
    graph = onnx.load(str(tmp_path / "onnx" / "step.onnx")).graph
    x = next(i for i in graph.input if i.name == "x")
    assert [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim] == [
        "batch",
        3,
        len(task.columns["input"]),
    ]
    assert "one patch of 3 steps" in (tmp_path / "onnx" / "README.txt").read_text()
