"""The ``rnnkit`` command line (typer): train, evaluate, predict, generate, demo, info.

Every command is thin: it parses flags and calls the task a run was trained with (:mod:`rnnkit.tasks`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import typer

from .cli_common import STATE, console, err_console, friendly, print_metrics, resolve_input, save_json
from .cli_export import register as _register_export
from .cli_inspect import register as _register_inspect
from .cli_serve import register as _register_serve
from .cli_train import train_app

app = typer.Typer(
    name="rnnkit",
    help="Recurrent neural networks on sequential data: train, evaluate, predict, generate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(train_app, name="train")

DATA = typer.Option(None, "--data", help="input file (format depends on the task)")
WRITE = typer.Option(None, "--out", help="write results to this file")
OVERWRITE = typer.Option(False, "--overwrite", help="replace an existing output file")
DEVICE = typer.Option("auto", "--device", help="auto (CUDA if present, else CPU), cpu, cuda or mps")
ENCODING = typer.Option(None, "--encoding", help="text encoding of --data \\[default: the model's training encoding]")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"rnnkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="show full tracebacks on errors"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="show the version"),
) -> None:
    """rnnkit: recurrent neural networks on sequential data."""
    STATE["debug"] = debug


def _load(run: Path, device: str = "auto", encoding: str | None = None):
    from .tasks import load

    task = load(run, device)
    if encoding is not None and hasattr(task.cfg, "encoding"):
        task.cfg = dataclasses.replace(task.cfg, encoding=encoding)
    return task


def _write(text: str, target: Path | None) -> None:
    if target is None:
        sys.stdout.write(text)  # raw: a console would wrap long lines and break the CSV/CoNLL piped from here
        sys.stdout.flush()
    else:
        target.write_text(text, encoding="utf-8")
        console.print(f"wrote {target}")


@app.command()
@friendly
def evaluate(
    run: Path = typer.Argument(..., help="run directory made by 'rnnkit train'"),
    data: Path = DATA,
    files: list[Path] = typer.Option(None, help="classify: one file per class instead of --data"),
    src: Path = typer.Option(None, help="translate: source file"),
    tgt: Path = typer.Option(None, help="translate: reference file"),
    part: str = typer.Option("all", help="forecast: all, train, val or test windows of --data"),
    beam: int = typer.Option(None, help="translate: beam size \\[default: the model's]"),
    backtest: int = typer.Option(
        None, help="forecast: K rolling origins over the test part; writes RUN/backtest.csv and backtest.png"
    ),
    retrain: bool = typer.Option(False, "--retrain", help="forecast --backtest: train afresh at each origin"),
    encoding: str = ENCODING,
    device: str = DEVICE,
    out: Path = WRITE,
    overwrite: bool = OVERWRITE,
) -> None:
    """Score a trained model on labelled data and print (and optionally save) the metrics.

    Example: rnnkit evaluate runs/ner --data test.conll --out runs/ner/test_metrics.json
    (forecast backtest: rnnkit evaluate runs/sales --data sales.csv --backtest 8)
    """
    from .tasks.base import Inputs, check_writable

    target = check_writable(out, overwrite)
    task = _load(run, device, encoding)
    inputs = Inputs(
        data=resolve_input(data, "--data"),
        files=resolve_input(files or None, "--files"),
        src=resolve_input(src, "--src"),
        tgt=resolve_input(tgt, "--tgt"),
        part=part,
        beam=beam,
        backtest=backtest,
        retrain=retrain,
        run=run,
        overwrite=overwrite,
    )
    metrics = task.evaluate_inputs(inputs)
    print_metrics(f"{task.name}: {run}", metrics)
    if target is not None:
        save_json(target, metrics)
        console.print(f"wrote {target}")


@app.command()
@friendly
def predict(
    run: Path = typer.Argument(..., help="run directory made by 'rnnkit train'"),
    data: Path = DATA,
    out: Path = WRITE,
    plot: Path = typer.Option(None, help="forecast: also draw history and forecast to this PNG"),
    text: bool = typer.Option(False, "--text", help="tag: input is plain text, one sentence per line"),
    column: str = typer.Option(None, help="classify: text column of a CSV input \\[default: the training column]"),
    beam: int = typer.Option(None, help="translate: beam size \\[default: the model's]"),
    encoding: str = ENCODING,
    device: str = DEVICE,
    overwrite: bool = OVERWRITE,
) -> None:
    """Predict with a trained model: forecasts (CSV), labels (CSV), tags (CoNLL) or translations (text).

    Example: rnnkit predict runs/sales --data new.csv --out forecast.csv --plot forecast.png
    """
    from .tasks.base import Inputs, check_writable

    if data is None:
        raise ValueError("give --data with the input to predict on")
    target, picture = check_writable(out, overwrite), check_writable(plot, overwrite)
    task = _load(run, device, encoding)
    inputs = Inputs(data=resolve_input(data, "--data"), text=text, column=column, beam=beam, plot=picture)
    _write(task.predict_inputs(inputs), target)
    if picture is not None and picture.exists():
        console.print(f"wrote {picture}")


@app.command()
@friendly
def generate(
    run: Path = typer.Argument(..., help="run directory of a language model"),
    prompt: str = typer.Option("", help="text to continue"),
    length: int = typer.Option(200, help="tokens to generate (at most 100000)"),
    temperature: float = typer.Option(1.0, help="sampling temperature; 0 = greedy"),
    top_k: int = typer.Option(None, "--top-k", help="sample among the k most likely tokens"),
    top_p: float = typer.Option(None, "--top-p", help="nucleus sampling mass"),
    seed: int = typer.Option(None, help="seed for reproducible samples"),
    device: str = DEVICE,
    out: Path = WRITE,
    overwrite: bool = OVERWRITE,
) -> None:
    """Generate text with a trained language model (one-to-many use of a many-to-many model), printed as drawn.

    Example: rnnkit generate runs/book --prompt "ROMEO:" --length 400 --temperature 0.8
    """
    from .decoding import SamplingConfig
    from .tasks.base import check_writable
    from .tasks.lm import LanguageModel

    target = check_writable(out, overwrite)
    task = _load(run, device)
    if not isinstance(task, LanguageModel):
        raise ValueError(f"{run} holds a {task.name!r} model; generate needs a language model ('rnnkit train lm')")
    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
    pieces = task.generate_stream(prompt, length, sampling, seed)
    if target is None:
        for piece in pieces:
            console.out(piece, end="", highlight=False)
            console.file.flush()
        console.out("")
    else:
        from rich.progress import Progress

        with target.open("w", encoding="utf-8") as fh, Progress(console=err_console, transient=True) as bar:
            job = bar.add_task("generating", total=length)
            for piece in pieces:
                fh.write(piece)
                bar.advance(job)
            fh.write("\n")
        console.print(f"wrote {target}")


@app.command()
@friendly
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="where the demo forecaster is saved"),
    timestep: int = typer.Option(100, help="sequence length T of the adding problem"),
    seed: int = typer.Option(0, help="seed for weights and data"),
    skip_memory: bool = typer.Option(False, "--skip-memory", help="only the forecasting part"),
) -> None:
    """The tour on built-in data: forecast CO2 (vs seasonal naive), reload and predict; then which cells remember.

    Example: rnnkit demo --out runs/demo
    """
    from .demo import MemoryDemoConfig, run_forecast_demo, run_memory_demo

    if timestep < 2:
        raise ValueError(f"timestep must be >= 2, got {timestep}")
    run_forecast_demo(out, seed=seed)
    if not skip_memory:
        run_memory_demo(MemoryDemoConfig(timestep=timestep, seed=seed, out=out))


@app.command()
@friendly
def info(run: Path = typer.Argument(..., help="run directory")) -> None:
    """Show what a run holds: task, configuration and saved metrics.

    Example: rnnkit info runs/sales
    """
    from .tasks.base import model_dir
    from .training.checkpoint import read_config

    cfg = read_config(model_dir(run))
    console.print_json(json.dumps({"task": cfg["task"], "config": cfg["config"]}))
    metrics = Path(run) / "metrics.json"
    if metrics.is_file():
        print_metrics("metrics.json", json.loads(metrics.read_text()))


# commands defined in their own modules (each has ``register(app)``): one import above, one call here
_register_export(app)
_register_inspect(app)
_register_serve(app)


if __name__ == "__main__":
    app()
