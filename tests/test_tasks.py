"""The Task template and registry (rnnkit.tasks): a sixth task is one class plus one registration; the run
directory is locked, never loses an earlier run to bad input and is cleaned up after a failure; resume is exact
through the task layer; hints name CLI flags; inputs resolve in the data directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

import rnnkit
from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.cli import app
from rnnkit.tasks import REGISTRY, register_task, task_class
from rnnkit.tasks.base import Inputs, Task, bucket_loader
from rnnkit.tasks.classify import Classifier, ClassifyConfig
from rnnkit.tasks.flags import Flag
from rnnkit.training.distributed import unwrap
from rnnkit.training.trainer import Trainer, TrainerConfig

runner = CliRunner()


# ---- a sixth task, written the way a user would: one class -----------------------------------------------------
@dataclass
class RecallConfig:
    """The first bit of a bit string: a many-to-one RNN must carry it to the end of the string."""

    column: str = "bits"
    hidden_size: int = 16
    val_fraction: float = 0.2
    batch_size: int = 32
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="gru", hidden_size=16))
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=25, lr=1e-2, progress=False))


class RecallTask(Task):
    name = "recall"
    Config = RecallConfig
    summary = "The first bit of bit strings."
    example = "rnnkit train recall --data bits.csv --out runs/recall"
    flags = (
        Flag("data", "--data", "CSV with a column of bit strings", Path, required=True),
        Flag("column", "--column", "the bit-string column", key="column"),
    )

    @classmethod
    def read(cls, cfg: RecallConfig, source: Any) -> list[str]:
        return pd.read_csv(source, dtype=str)[cfg.column].tolist()

    @classmethod
    def build(cls, cfg: RecallConfig, train: list[str]) -> RecallTask:
        head = HeadConfig(num_classes=2)
        return cls(cfg, ManyToOne(ManyToOneConfig(InputConfig(input_size=1), cfg.rnn, "last", head)))

    def loader(self, examples: list[str], *, train: bool) -> Any:
        data = [([[float(b)] for b in s], int(s[0])) for s in examples]
        data = [(torch.tensor(x), y) for x, y in data]
        return bucket_loader(data, self.cfg.batch_size, shuffle=train, seed=self.cfg.trainer.seed)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
        x, lengths, y = batch
        return unwrap(model).loss(model(x, lengths), y)

    def predict(self, bits: list[str]) -> list[int]:
        self.model.eval()
        with torch.no_grad():
            x = torch.tensor([[[float(b)] for b in s] for s in bits])
            return self.model(x).argmax(-1).tolist()

    @classmethod
    def from_artifacts(cls, cfg: RecallConfig, artifacts: dict[str, Any]) -> RecallTask:
        return cls.build(cfg, [])

    def predict_inputs(self, inputs: Inputs) -> str:
        return "\n".join(map(str, self.predict(self.read(self.cfg, inputs.data)))) + "\n"


@pytest.fixture
def recall(tmp_path):
    register_task(RecallTask)
    rng = np.random.default_rng(0)
    rows = ["".join(rng.choice(list("01"), 6)) for _ in range(300)]
    pd.DataFrame({"bits": rows}).to_csv(tmp_path / "bits.csv", index=False)
    yield tmp_path / "bits.csv"
    REGISTRY.pop("recall", None)
    from rnnkit.cli_train import train_app

    train_app.registered_commands[:] = [c for c in train_app.registered_commands if c.name != "recall"]


def test_a_sixth_task_is_one_class_and_one_registration(recall, tmp_path):
    assert task_class("recall") is RecallTask
    result = runner.invoke(app, ["train", "recall", "--help"])
    assert result.exit_code == 0 and "--column" in result.output and "bits" in result.output  # the default
    result = runner.invoke(app, ["train", "recall", "--data", str(recall), "--out", str(tmp_path / "p"), "--quiet"])
    assert result.exit_code == 0, result.output
    task = rnnkit.load(tmp_path / "p")
    assert isinstance(task, RecallTask)
    assert (tmp_path / "p" / "metrics.json").is_file() and (tmp_path / "p" / "loss.png").is_file()
    assert task.predict(["110100", "000000", "111000", "011111"]) == [1, 0, 1, 0], "it remembered the first bit"
    out = runner.invoke(app, ["predict", str(tmp_path / "p"), "--data", str(recall)])
    assert out.exit_code == 0 and len(out.output.split()) == 300


def test_help_shows_every_default():
    wide = {"COLUMNS": "250"}
    out = runner.invoke(app, ["train", "forecast", "--help"], env=wide).output
    horizon = next(line for line in out.splitlines() if "│" in line and "--horizon" in line)
    assert "default: 1" in horizon
    assert "default: " in next(ln for ln in out.splitlines() if "│" in ln and "--timestep" in ln)  # adapts: says how
    assert "0.1,0.5,0.9" in out  # --quantiles
    assert "default: lstm" in out and "default: auto" in out  # --cell, --device
    assert "default: 128" in runner.invoke(app, ["train", "lm", "--help"], env=wide).output
    assert "default: --crf" in runner.invoke(app, ["train", "tag", "--help"], env=wide).output


# ---- the run directory ---------------------------------------------------------------------------------------
def _series(tmp_path: Path, n: int = 200, nan_at: int | None = None) -> Path:
    y = np.sin(np.arange(n) / 4) + np.arange(n) * 0.01
    if nan_at is not None:
        y[nan_at] = np.nan
    pd.DataFrame({"y": y}).to_csv(tmp_path / "s.csv", index=False)
    return tmp_path / "s.csv"


TRAIN = ["train", "forecast", "--target", "y", "--timestep", "8", "--horizon", "2", "--epochs", "1", "--quiet"]


def test_hints_name_the_flag_on_the_cli_and_the_keyword_in_python(tmp_path):
    data = _series(tmp_path, nan_at=50)
    result = runner.invoke(app, [*TRAIN, "--data", str(data), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "--missing interpolate" in result.output, result.output
    assert "missing=" not in result.output
    from rnnkit.data.timeseries import SeriesConfig
    from rnnkit.tasks.forecast import ForecastConfig, Forecaster

    with pytest.raises(ValueError, match="missing='interpolate'"):
        Forecaster.train(ForecastConfig(series=SeriesConfig(target=["y"], timestep=8)), data, tmp_path / "py")


def test_a_failed_run_leaves_nothing_behind(tmp_path):
    bad = _series(tmp_path, nan_at=50)
    result = runner.invoke(app, [*TRAIN, "--data", str(bad), "--out", str(tmp_path / "new")])
    assert result.exit_code == 1 and not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = runner.invoke(app, [*TRAIN, "--data", str(bad), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 1 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_overwrite_with_bad_input_keeps_the_earlier_run(tmp_path):
    good = _series(tmp_path)
    assert runner.invoke(app, [*TRAIN, "--data", str(good), "--out", str(tmp_path / "r")]).exit_code == 0
    before = (tmp_path / "r" / "model" / "model.safetensors").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("y\nnot-a-number\n")
    result = runner.invoke(app, [*TRAIN, "--data", str(bad), "--out", str(tmp_path / "r"), "--overwrite"])
    assert result.exit_code == 1
    assert (tmp_path / "r" / "model" / "model.safetensors").read_bytes() == before


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    result = runner.invoke(app, [*TRAIN, "--data", str(_series(tmp_path)), "--out", str(tmp_path / "r"), "--resume"])
    assert result.exit_code == 1 and "no checkpoint to resume" in result.output and "--resume" in result.output
    assert not (tmp_path / "r").exists()


def test_a_second_training_into_the_same_directory_is_refused(tmp_path):
    (tmp_path / "r").mkdir()
    code = textwrap.dedent(
        f"""
        import sys, time
        from rnnkit.training.rundir import RunLock
        with RunLock({str(tmp_path / "r")!r}):
            print("locked", flush=True)
            time.sleep(30)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = runner.invoke(app, [*TRAIN, "--data", str(_series(tmp_path)), "--out", str(tmp_path / "r")])
        assert result.exit_code == 1 and f"pid {holder.pid}" in result.output, result.output
    finally:
        holder.kill()
        holder.wait()
    assert runner.invoke(app, [*TRAIN, "--data", str(_series(tmp_path)), "--out", str(tmp_path / "r")]).exit_code == 0


def test_relative_inputs_are_found_in_the_data_directory(tmp_path, monkeypatch):
    (tmp_path / "data" / "sales").mkdir(parents=True)
    _series(tmp_path / "data" / "sales")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*TRAIN, "--data", "sales/s.csv", "--out", "run"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "run", "--data", "sales/s.csv"])
    assert result.exit_code == 0, result.output


def test_device_option(tmp_path):
    data = _series(tmp_path)
    assert (
        runner.invoke(app, [*TRAIN, "--data", str(data), "--out", str(tmp_path / "r"), "--device", "cpu"]).exit_code
        == 0
    )
    if not torch.cuda.is_available():
        result = runner.invoke(app, [*TRAIN, "--data", str(data), "--out", str(tmp_path / "g"), "--device", "cuda"])
        assert result.exit_code == 1 and "no CUDA GPU" in result.output
        result = runner.invoke(app, ["predict", str(tmp_path / "r"), "--data", str(data), "--device", "cuda"])
        assert result.exit_code == 1 and "no CUDA GPU" in result.output


# ---- exact resume through the task layer ------------------------------------------------------------------------
def _reviews(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    words = ["good", "bad", "film", "plot", "the", "a", "great", "awful", "story", "acting"]
    rows = [(" ".join(rng.choice(words, int(rng.integers(3, 12)))), str(rng.integers(2))) for _ in range(160)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "r.csv", index=False)
    return tmp_path / "r.csv"


@pytest.mark.parametrize("stop_at", [4, 6], ids=["epoch-end", "mid-epoch"])
def test_interrupted_and_resumed_training_equals_an_uninterrupted_one(tmp_path, monkeypatch, stop_at):
    data = _reviews(tmp_path)
    cfg = ClassifyConfig(
        embedding_dim=8,
        dropout=0.3,
        batch_size=32,
        rnn=RNNConfig(cell="gru", hidden_size=8, bidirectional=True),
        trainer=TrainerConfig(epochs=3, progress=False, monitor="val_accuracy", mode="max"),
    )  # 160 texts - 16 val - 16 test = 128 to train on: 4 batches per epoch
    full, _ = Classifier.train(cfg, data, tmp_path / "full")

    original = Trainer._train_batch

    def stopping(self, batch):
        loss = original(self, batch)
        if self.state.step == stop_at:
            self.stop()
        return loss

    monkeypatch.setattr(Trainer, "_train_batch", stopping)
    with pytest.raises(KeyboardInterrupt, match="continue with --resume"):
        Classifier.train(cfg, data, tmp_path / "cut")
    with pytest.raises(ValueError, match="holds an unfinished training .* plus resume"):
        rnnkit.load(tmp_path / "cut")
    monkeypatch.setattr(Trainer, "_train_batch", original)
    resumed, _ = Classifier.train(cfg, data, tmp_path / "cut", resume=True)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    logs = [pd.read_csv(tmp_path / run / "metrics.csv").drop(columns="items_per_s") for run in ("full", "cut")]
    pd.testing.assert_frame_equal(*logs)  # the same rows (throughput aside, which is a clock reading)


def test_the_tagger_evaluates_with_one_forward_pass_per_batch(slices, tmp_path, monkeypatch):
    from rnnkit.tasks.tag import TagConfig, Tagger

    cfg = TagConfig(embedding_dim=8, rnn=RNNConfig(hidden_size=8, bidirectional=True), crf=True)
    cfg.trainer = TrainerConfig(epochs=1, progress=False, monitor="val_f1", mode="max")
    task, _ = Tagger.train(cfg, slices["valid.conll"], tmp_path / "t")
    calls = []
    forward = type(task.model).forward
    monkeypatch.setattr(type(task.model), "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    loader = task.loader(task.read(cfg, slices["test.conll"]), train=False)
    task.score(loader)
    assert len(calls) == len(loader)


def test_task_load_moves_the_model_to_the_device(tmp_path):
    data = _series(tmp_path)
    assert runner.invoke(app, [*TRAIN, "--data", str(data), "--out", str(tmp_path / "r")]).exit_code == 0
    assert rnnkit.load(tmp_path / "r", device="cpu").device == torch.device("cpu")


def test_every_registered_task_has_a_train_command():
    out = runner.invoke(app, ["train", "--help"]).output
    for name in REGISTRY:
        assert name in out
