"""The command line, in-process and as a subprocess: every task from file to model to predictions; bad input
gives one line on stderr and a non-zero exit; nothing saved is overwritten without --overwrite."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rnnkit.cli import app

runner = CliRunner()
SMALL = ["--epochs", "1", "--hidden", "16", "--quiet"]


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(map(str, args)))
    assert result.exit_code == code, (
        f"exit {result.exit_code}: {result.output}\n{result.stderr if result.stderr_bytes else ''}"
    )
    return result


@pytest.fixture
def series(tmp_path):
    t = pd.date_range("2023-01-01", periods=300, freq="D")
    y = 20 + np.sin(np.arange(300) * 2 * np.pi / 7) + np.arange(300) * 0.01
    pd.DataFrame({"date": t.strftime("%Y-%m-%d"), "sales": y, "temp": np.cos(np.arange(300))}).to_csv(
        tmp_path / "sales.csv", index=False
    )
    return tmp_path / "sales.csv"


def test_help_lists_commands_and_every_command_has_an_example():
    out = run("--help").output
    for cmd in ("train", "evaluate", "predict", "generate", "demo"):
        assert cmd in out
    for cmd in (
        ["train", "forecast"],
        ["train", "classify"],
        ["train", "tag"],
        ["train", "translate"],
        ["train", "lm"],
        ["evaluate"],
        ["predict"],
        ["generate"],
        ["demo"],
    ):
        assert "Example: rnnkit" in run(*cmd, "--help").output, cmd


def test_forecast_train_evaluate_predict(series, tmp_path):
    out = tmp_path / "run"
    run(
        "train",
        "forecast",
        "--data",
        series,
        "--target",
        "sales",
        "--time-column",
        "date",
        "--past",
        "temp",
        "--timestep",
        "14",
        "--horizon",
        "7",
        "--out",
        out,
        *SMALL,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["season"] == 7 and "seasonal_naive" in metrics
    run("evaluate", out, "--data", series, "--part", "test", "--out", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["model"]["mae"] == pytest.approx(metrics["model"]["mae"])
    run("predict", out, "--data", series, "--out", tmp_path / "f.csv", "--plot", tmp_path / "f.png")
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert len(forecast) == 7 and forecast["date"].iloc[0] == "2023-10-28"
    assert (tmp_path / "f.png").stat().st_size > 1000
    # nothing already saved is overwritten without --overwrite
    result = run("predict", out, "--data", series, "--out", tmp_path / "f.csv", code=1)
    assert "exists; pass --overwrite" in result.output
    result = run("train", "forecast", "--data", series, "--target", "sales", "--out", out, *SMALL, code=1)
    assert "already holds a run" in result.output and "Traceback" not in result.output


def test_config_file_with_flag_overrides(series, tmp_path):
    (tmp_path / "c.yaml").write_text(
        "series:\n  target: [sales]\n  timestep: 10\n  horizon: 3\nrnn:\n  cell: gru\n"
        "trainer:\n  epochs: 1\n  progress: false\n"
    )
    run(
        "train",
        "forecast",
        "--data",
        series,
        "--config",
        tmp_path / "c.yaml",
        "--horizon",
        "5",
        "--out",
        tmp_path / "r",
    )
    cfg = json.loads((tmp_path / "r" / "model" / "config.json").read_text())["config"]
    assert cfg["series"]["timestep"] == 10 and cfg["series"]["horizon"] == 5 and cfg["rnn"]["cell"] == "gru"
    (tmp_path / "bad.yaml").write_text("rnn:\n  hiden_size: 3\n")
    result = run(
        "train", "forecast", "--data", series, "--config", tmp_path / "bad.yaml", "--out", tmp_path / "x", code=1
    )
    assert "unknown option(s) ['hiden_size']" in result.output


def test_text_tasks_through_the_cli(slices, tmp_path):
    run(
        "train",
        "classify",
        "--files",
        slices["mr.pos"],
        "--files",
        slices["mr.neg"],
        "--encoding",
        "latin-1",
        "--out",
        tmp_path / "cls",
        *SMALL,
    )
    (tmp_path / "reviews.txt").write_text("a moving , funny film\nboring\n")
    run("predict", tmp_path / "cls", "--data", tmp_path / "reviews.txt", "--out", tmp_path / "p.csv")
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["text", "label", "p_neg", "p_pos"]
    run(
        "train",
        "tag",
        "--data",
        slices["train.conll"],
        "--dev",
        slices["valid.conll"],
        "--crf",
        "--out",
        tmp_path / "ner",
        *SMALL,
    )
    run("evaluate", tmp_path / "ner", "--data", slices["test.conll"])
    run("predict", tmp_path / "ner", "--data", slices["test.conll"], "--out", tmp_path / "tags.conll")
    from rnnkit.data.readers import read_conll

    tagged = read_conll(tmp_path / "tags.conll")
    gold = read_conll(slices["test.conll"])
    assert [s.tokens for s in tagged] == [s.tokens for s in gold]
    run(
        "train",
        "translate",
        "--src",
        slices["train.de"],
        "--tgt",
        slices["train.en"],
        "--dev-src",
        slices["val.de"],
        "--dev-tgt",
        slices["val.en"],
        "--out",
        tmp_path / "mt",
        *SMALL,
    )
    run("predict", tmp_path / "mt", "--data", slices["val.de"], "--out", tmp_path / "hyp.en", "--beam", "2")
    assert len((tmp_path / "hyp.en").read_text().splitlines()) == 40
    run("train", "lm", "--data", slices["shakespeare.txt"], "--timestep", "32", "--out", tmp_path / "lm", *SMALL)
    text = run("generate", tmp_path / "lm", "--prompt", "ROMEO:", "--length", "30", "--seed", "1").output
    assert text.startswith("ROMEO:")
    assert run("generate", tmp_path / "lm", "--prompt", "ROMEO:", "--length", "30", "--seed", "1").output == text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "forecast", "--data", "{tmp}/missing.csv", "--target", "y", "--out", "{tmp}/r"], "no such file"),
        (
            ["train", "forecast", "--data", "{series}", "--target", "revenue", "--out", "{tmp}/r"],
            "unknown column(s) ['revenue']",
        ),
        (["train", "forecast", "--data", "{series}", "--target", "date", "--out", "{tmp}/r"], "is not numeric"),
        (["train", "classify", "--files", "{latin}", "--files", "{latin}", "--out", "{tmp}/r"], "not valid utf-8"),
        (["evaluate", "{tmp}", "--data", "{series}"], "holds no trained model"),
        (["train", "forecast", "--bogus", "1"], "No such option"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, series, tmp_path):
    (tmp_path / "latin.pos").write_bytes(b"caf\xe9\n")
    fill = {"tmp": tmp_path, "series": series, "latin": tmp_path / "latin.pos"}
    result = runner.invoke(app, [a.format(**fill) for a in args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_checkpoint_from_another_task_is_refused(series, tmp_path):
    run(
        "train",
        "forecast",
        "--data",
        series,
        "--target",
        "sales",
        "--timestep",
        "7",
        "--horizon",
        "2",
        "--out",
        tmp_path / "f",
        *SMALL,
    )
    result = run("generate", tmp_path / "f", "--prompt", "x", code=1)
    assert "holds a 'forecast' model; generate needs a language model" in result.output


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "evaluate", str(tmp_path), "--data", "x.csv"])
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)


def test_console_entry_point_runs_as_a_subprocess(series, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "rnnkit.cli",
        "train",
        "forecast",
        "--data",
        str(series),
        "--target",
        "sales",
        "--timestep",
        "7",
        "--horizon",
        "2",
        "--out",
        str(tmp_path / "s"),
        *SMALL,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", "predict", str(tmp_path / "s"), "--data", "nope.csv"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "error: --data nope.csv: no such file here" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_generate_streams_and_bounds_the_length(slices, tmp_path):
    run("train", "lm", "--data", slices["shakespeare.txt"], "--timestep", "16", "--out", tmp_path / "lm", *SMALL)
    result = run("generate", tmp_path / "lm", "--length", "1000000000", code=1)
    assert "--length" in result.output and "100000" in result.output
    from rnnkit import load
    from rnnkit.decoding import SamplingConfig

    lm = load(tmp_path / "lm")
    pieces = list(lm.generate_stream("ROMEO:", 50, SamplingConfig(temperature=0.8), seed=3))
    assert pieces[0] == "ROMEO:" and len(pieces) == 51
    assert "".join(pieces) == lm.generate("ROMEO:", 50, SamplingConfig(temperature=0.8), seed=3)
    printed = run(
        "generate", tmp_path / "lm", "--prompt", "ROMEO:", "--length", "50", "--temperature", "0.8", "--seed", "3"
    )
    assert printed.output.rstrip("\n") == "".join(pieces)


def test_tag_predict_on_plain_text_hints_at_text(slices, tmp_path):
    run("train", "tag", "--data", slices["valid.conll"], "--out", tmp_path / "ner", *SMALL)
    (tmp_path / "plain.txt").write_text("EU rejects German call to boycott British lamb .\n")
    result = run("predict", tmp_path / "ner", "--data", tmp_path / "plain.txt", code=1)
    assert "--text" in result.output
    (tmp_path / "plain2.txt").write_text("EU rejects German call .\nPeter Blackburn arrived\nA third one here !\n")
    assert "--text" in run("predict", tmp_path / "ner", "--data", tmp_path / "plain2.txt", code=1).output
    tagged = run("predict", tmp_path / "ner", "--data", tmp_path / "plain2.txt", "--text").output
    assert len([ln for ln in tagged.splitlines() if ln.strip()]) == 5 + 3 + 5


def test_classify_reads_label_text_lines(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(200):
        y = int(rng.integers(2))
        lines.append(f"__label__{'pos' if y else 'neg'} the film was {'superb' if y else 'dull'} and long")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    run("train", "classify", "--data", tmp_path / "train.txt", "--out", tmp_path / "c", *SMALL)
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 20
    (tmp_path / "sst.txt").write_text("1 a superb film\n0 a dull film\n1 superb\n0 dull\n" * 20)
    run("train", "classify", "--data", tmp_path / "sst.txt", "--out", tmp_path / "s", *SMALL)
    from rnnkit import load

    assert load(tmp_path / "s").labels == ["0", "1"]


def test_torchrun_trains_with_two_processes_from_the_command_line(tmp_path):
    import os

    pd.DataFrame({"y": np.sin(np.arange(300) / 5)}).to_csv(tmp_path / "s.csv", index=False)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "rnnkit",
        "train",
        "forecast",
        "--data",
        str(tmp_path / "s.csv"),
        "--target",
        "y",
        "--timestep",
        "10",
        "--horizon",
        "3",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--quiet",
        "--out",
        str(tmp_path / "ddp"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved to") == 1, "rank 0 alone reports"
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["windows"] > 0
    log = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    assert log["step"].is_monotonic_increasing, "rank 0 alone writes the training log"
    # 300 rows -> 210 train rows -> 198 windows -> 4 batches of 64, shared by two ranks: 2 steps per epoch
    assert log["step"].max() == 4


def test_stdout_is_raw_and_long_lines_are_never_wrapped(tmp_path):
    rows = [(f"{'a very long review of a superb film ' * 6}{i}", "pos" if i % 2 else "neg") for i in range(60)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "r.csv", index=False)
    run("train", "classify", "--data", tmp_path / "r.csv", "--out", tmp_path / "c", *SMALL)
    pd.DataFrame({"id": [7, 8], "text": [rows[0][0], "short"]}).to_csv(tmp_path / "new.csv", index=False)
    out = run("predict", tmp_path / "c", "--data", tmp_path / "new.csv").stdout
    table = pd.read_csv(__import__("io").StringIO(out))
    assert list(table["id"]) == [7, 8] and table["text"][0] == rows[0][0], "the user's columns come back, unwrapped"
    assert {"label", "p_neg", "p_pos"} <= set(table.columns)


def test_a_config_file_takes_the_flag_names_too(series, tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 1\nhidden: 12\ncell: gru\ntarget: sales\ntimestep: 7\nhorizon: 2\n")
    run("train", "forecast", "--data", series, "--config", tmp_path / "c.yaml", "--quiet", "--out", tmp_path / "r")
    cfg = json.loads((tmp_path / "r" / "model" / "config.json").read_text())["config"]
    assert cfg["rnn"] == {**cfg["rnn"], "hidden_size": 12, "cell": "gru"} and cfg["trainer"]["epochs"] == 1
    assert cfg["series"]["target"] == ["sales"] and cfg["series"]["horizon"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--lr", "nan"], "--lr must be a positive number"),
        (["--hidden", "0"], "--hidden must be >= 1"),
        (["--layers", "0"], "--layers must be >= 1"),
        (["--cell", "bogus"], "unknown cell 'bogus'"),
        (["--checkpoint-every", "soon"], "--checkpoint-every"),
    ],
)
def test_bad_options_name_their_flag(series, tmp_path, args, message):
    result = run("train", "forecast", "--data", series, "--target", "sales", "--out", tmp_path / "r", *args, code=1)
    assert message in result.output and "TrainerConfig: epochs" not in result.output
    assert not (tmp_path / "r").exists(), "a refused run leaves nothing behind"


def test_broken_gzip_files_are_one_line_errors(tmp_path):
    (tmp_path / "a.gz").write_bytes(b"not gzip at all")
    import gzip

    (tmp_path / "full.gz").write_bytes(gzip.compress(("ein hund rennt .\n" * 2000).encode()))
    (tmp_path / "cut.gz").write_bytes((tmp_path / "full.gz").read_bytes()[:60])
    for name in ("a.gz", "cut.gz"):
        result = run("train", "lm", "--data", tmp_path / name, "--out", tmp_path / "r", code=1)
        assert f"{name}: not a complete gzip file" in result.output and "Traceback" not in result.output


def test_tag_training_needs_a_tag_column(tmp_path):
    (tmp_path / "o.txt").write_text("EU\nrejects\n\nGerman\ncall\n")
    result = run("train", "tag", "--data", tmp_path / "o.txt", "--out", tmp_path / "r", code=1)
    assert "one column (a token without a tag)" in result.output


def test_predict_and_evaluate_take_an_encoding(tmp_path):
    lines = ["superb film", "dull film", "a superb story", "a dull story"] * 10
    labels = ["pos", "neg"] * 20
    pd.DataFrame({"text": lines, "label": labels}).to_csv(tmp_path / "r.csv", index=False, encoding="latin-1")
    run("train", "classify", "--data", tmp_path / "r.csv", "--encoding", "latin-1", "--out", tmp_path / "c", *SMALL)
    (tmp_path / "utf.txt").write_text("un film très réussi\n", encoding="utf-8")
    default = run("predict", tmp_path / "c", "--data", tmp_path / "utf.txt").stdout
    given = run("predict", tmp_path / "c", "--data", tmp_path / "utf.txt", "--encoding", "utf-8").stdout
    assert "très réussi" in given and "très" not in default


def test_an_early_interruption_says_so_and_a_folder_is_not_a_run(tmp_path, monkeypatch):
    import typer

    from rnnkit.cli_common import friendly

    app_ = typer.Typer()

    @app_.command()
    @friendly
    def stopped() -> None:
        raise KeyboardInterrupt  # Ctrl-C before the Trainer's own handler is in place: no message of its own

    app_.command("other")(lambda: None)
    result = runner.invoke(app_, ["stopped"])
    assert result.exit_code == 130 and "interrupted: stopped by the user" in result.output
    monkeypatch.chdir(tmp_path)
    assert "holds no trained model" in run("predict", ".", "--data", "x.csv", code=1).output


def test_version():
    assert run("--version").output.strip().startswith("rnnkit ")


def test_train_help_shows_every_default():
    """Options left unset say what they mean: the adaptive length (its monitor, patience and least updates, from
    the task's own config), the held-out parts, no time limit."""
    expect = {
        "classify": ["until val_accuracy has not improved for 3 evaluations (after at least 300 updates", "10% of the"],
        "tag": [
            "until val_f1 has not improved for 5 evaluations (after at least 1000 updates",
            "test file [default: none]",
        ],
        "translate": ["until val_bleu has not improved for 3 evaluations", "5% of the training data"],
        "lm": ["until val_loss has not improved for 3 evaluations", "its last 10% is the validation part"],
    }
    for task, phrases in expect.items():
        out = runner.invoke(app, ["train", task, "--help"], env={"COLUMNS": "400"}).output
        lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│") and "--" in line}
        for flag in ("--epochs", "--max-epochs", "--time-budget", "--lr", "--batch-size", "--hidden", "--seed"):
            assert "[default: " in lines[flag], (task, lines[flag])
        assert "[default: none]" in lines["--time-budget"]
        for phrase in phrases:
            assert phrase in out, (task, phrase)


def test_a_bad_embeddings_file_is_one_line_naming_file_and_line(tmp_path):
    sentences = ["EU B-ORG\nrejects O\nGerman B-MISC\ncall O", "Peter B-PER\nBlackburn I-PER"] * 4
    (tmp_path / "train.conll").write_text("\n\n".join(sentences) + "\n")
    (tmp_path / "reviews.csv").write_text(
        "text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(8))
    )
    (tmp_path / "wrong_size.txt").write_text("eu 1 2 3 4\ngerman 5 6 7 8\npeter 1 2 3\n")
    (tmp_path / "not_a_number.txt").write_text("good 1 2\nfilm 1 two\n")
    for args, where, what in (
        (["tag", "--data", tmp_path / "train.conll"], "wrong_size.txt:3:", "expected a word and 4 numbers"),
        (["classify", "--data", tmp_path / "reviews.csv"], "not_a_number.txt:2:", "'two' is not a number"),
    ):
        vectors = tmp_path / where.split(":")[0]
        result = run("train", *args, "--embeddings", vectors, *SMALL, "--out", tmp_path / args[0], code=1)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and where in lines[0] and what in lines[0], result.output
        assert not (tmp_path / args[0]).exists()  # nothing left behind
