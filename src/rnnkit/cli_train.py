"""``rnnkit train <task>``: one command from a data file to a trained model, its metrics and plots."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from .cli_common import build_config, console, friendly, parse_floats, print_metrics

train_app = typer.Typer(help="Train a model on your data; everything lands in --out.", no_args_is_help=True)

# options every task shares (None = keep the config file's / default value)
OUT = typer.Option(..., "--out", help="run directory for the model, checkpoints, metrics and plots")
CONFIG = typer.Option(None, "--config", help="YAML/JSON file of options; flags override it")
EPOCHS = typer.Option(None, help="passes over the training data")
LR = typer.Option(None, help="peak learning rate (AdamW)")
BATCH = typer.Option(None, "--batch-size", help="examples per training step")
CELL = typer.Option(None, help="rnn_tanh, rnn_relu, lstm, gru, layernorm_lstm, mingru or minlstm")
HIDDEN = typer.Option(None, help="hidden size H")
LAYERS = typer.Option(None, help="stacked recurrent layers")
SEED = typer.Option(None, help="seed for weights, data order and dropout")
OVERWRITE = typer.Option(False, "--overwrite", help="replace an existing run in --out")
RESUME = typer.Option(False, "--resume", help="continue the interrupted run in --out")
QUIET = typer.Option(False, "--quiet", help="no progress bar")


def common(
    epochs: int | None,
    lr: float | None,
    cell: str | None,
    hidden: int | None,
    layers: int | None,
    seed: int | None,
    quiet: bool,
    rnn: str = "rnn",
) -> dict[str, Any]:
    return {
        "trainer.epochs": epochs,
        "trainer.lr": lr,
        "trainer.seed": seed,
        "trainer.progress": False if quiet else None,
        f"{rnn}.cell": cell,
        f"{rnn}.hidden_size": hidden,
        f"{rnn}.num_layers": layers,
    }


def _done(out: Path, metrics: dict[str, Any], title: str) -> None:
    print_metrics(title, metrics)
    console.print(f"saved to [bold]{out}[/]: model/, metrics.json, loss.png (load with rnnkit.load({str(out)!r}))")


@train_app.command("forecast")
@friendly
def train_forecast(
    data: Path = typer.Option(..., help="CSV or Parquet file with the series"),
    target: list[str] = typer.Option(None, help="column(s) to forecast"),
    time_column: str = typer.Option(None, "--time-column", help="date/time column (parsed and sorted by)"),
    past: list[str] = typer.Option(None, help="past-observed covariate column(s)"),
    future: list[str] = typer.Option(None, help="known-future covariate column(s)"),
    calendar: list[str] = typer.Option(None, help="calendar features: hour, dayofweek, day, month, dayofyear"),
    timestep: int = typer.Option(None, help="lookback: past steps each forecast reads"),
    horizon: int = typer.Option(None, help="future steps predicted"),
    train_part: float = typer.Option(None, "--train", help="train part: fraction (<1) or rows"),
    val_part: float = typer.Option(None, "--val", help="validation part: fraction (<1) or rows"),
    test_part: float = typer.Option(None, "--test", help="test part: fraction or rows (default: the rest)"),
    missing: str = typer.Option(None, help="missing values: error, interpolate or ffill"),
    quantiles: str = typer.Option(None, help="prediction-interval quantiles, e.g. 0.1,0.5,0.9 ('none' for MSE)"),
    season: int = typer.Option(None, help="seasonal period for the naive baseline and MASE (default: inferred)"),
    encoding: str = typer.Option(None, help="text encoding of the CSV"),
    out: Path = OUT,
    config: Path = CONFIG,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH,
    cell: str = CELL,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    resume: bool = RESUME,
    quiet: bool = QUIET,
) -> None:
    """Forecast a time series: many-to-one RNN, horizon steps at once, with a prediction interval.

    Example: rnnkit train forecast --data sales.csv --target sales --time-column date --timestep 48 --horizon 12
    --cell lstm --out runs/sales
    """
    from .tasks.forecast import ForecastConfig, Forecaster

    q = None if quantiles in (None, "none") else parse_floats(quantiles, "--quantiles")
    flags = {
        "series.target": target or None,
        "series.time_column": time_column,
        "series.past_covariates": past or None,
        "series.future_covariates": future or None,
        "series.calendar": calendar or None,
        "series.timestep": timestep,
        "series.horizon": horizon,
        "series.train": train_part,
        "series.val": val_part,
        "series.test": test_part,
        "series.missing": missing,
        "season": season,
        "encoding": encoding,
        "batch_size": batch_size,
        **common(epochs, lr, cell, hidden, layers, seed, quiet),
    }
    if q is not None:
        flags["quantiles"] = q
    cfg = build_config(ForecastConfig, config, flags)
    if quantiles == "none":
        cfg = dataclasses.replace(cfg, quantiles=None)
    _task, metrics = Forecaster.train(cfg, data, out, overwrite=overwrite, resume=resume)
    _done(out, metrics, f"test forecast vs seasonal naive (season {metrics['season']})")


@train_app.command("classify")
@friendly
def train_classify(
    data: Path = typer.Option(None, help="CSV/Parquet file with a text and a label column"),
    files: list[Path] = typer.Option(None, help="instead: one file per class, one text per line (label = suffix)"),
    text: str = typer.Option(None, help="text column"),
    label: str = typer.Option(None, help="label column"),
    dev: Path = typer.Option(None, help="validation file (same format); default: a held-out part"),
    test: Path = typer.Option(None, help="test file (same format); default: a held-out part"),
    level: str = typer.Option(None, help="tokens: word, split, char or subword"),
    pooling: str = typer.Option(None, help="last, mean, max or attention"),
    max_length: int = typer.Option(None, "--max-length", help="tokens kept per text"),
    encoding: str = typer.Option(None, help="text encoding, e.g. latin-1"),
    out: Path = OUT,
    config: Path = CONFIG,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH,
    cell: str = CELL,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    resume: bool = RESUME,
    quiet: bool = QUIET,
) -> None:
    """Classify texts (sentiment, topics): bidirectional many-to-one RNN; accuracy and macro-F1.

    Example: rnnkit train classify --data reviews.csv --text review --label stars --out runs/reviews
    """
    from .tasks.classify import Classifier, ClassifyConfig

    if (data is None) == (not files):
        raise ValueError("give --data (a CSV with text and label columns) or --files (one file per class)")
    flags = {
        "text_column": text,
        "label_column": label,
        "level": level,
        "pooling": pooling,
        "max_length": max_length,
        "encoding": encoding,
        "batch_size": batch_size,
        **common(epochs, lr, cell, hidden, layers, seed, quiet),
    }
    cfg = build_config(ClassifyConfig, config, flags)
    source: Any = data if data is not None else list(files)
    _task, metrics = Classifier.train(cfg, source, out, dev=dev, test=test, overwrite=overwrite, resume=resume)
    _done(out, metrics, "classification")


@train_app.command("tag")
@friendly
def train_tag(
    data: Path = typer.Option(..., help="CoNLL training file"),
    dev: Path = typer.Option(None, help="CoNLL validation file; default: a held-out part"),
    test: Path = typer.Option(None, help="CoNLL test file"),
    crf: bool = typer.Option(None, "--crf/--no-crf", help="decode with a linear-chain CRF"),
    tag_column: int = typer.Option(None, "--tag-column", help="column of the tag (-1: last)"),
    encoding: str = typer.Option(None, help="text encoding"),
    out: Path = OUT,
    config: Path = CONFIG,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH,
    cell: str = CELL,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    resume: bool = RESUME,
    quiet: bool = QUIET,
) -> None:
    """Tag tokens (NER, chunking): bidirectional many-to-many RNN, optional CRF; entity F1 with seqeval.

    Example: rnnkit train tag --data train.conll --dev valid.conll --crf --out runs/ner
    """
    from .tasks.tag import TagConfig, Tagger

    flags = {
        "crf": crf,
        "tag_column": tag_column,
        "encoding": encoding,
        "batch_size": batch_size,
        **common(epochs, lr, cell, hidden, layers, seed, quiet),
    }
    cfg = build_config(TagConfig, config, flags)
    _task, metrics = Tagger.train(cfg, data, out, dev=dev, test=test, overwrite=overwrite, resume=resume)
    _done(out, metrics, "tagging (entity-level, seqeval)")


@train_app.command("translate")
@friendly
def train_translate(
    src: Path = typer.Option(..., help="source-language file, one sentence per line (.gz allowed)"),
    tgt: Path = typer.Option(..., help="target-language file, line-aligned with --src"),
    dev_src: Path = typer.Option(None, "--dev-src", help="validation source file"),
    dev_tgt: Path = typer.Option(None, "--dev-tgt", help="validation target file"),
    test_src: Path = typer.Option(None, "--test-src", help="test source file"),
    test_tgt: Path = typer.Option(None, "--test-tgt", help="test target file"),
    level: str = typer.Option(None, help="tokens: word, char or subword"),
    attention: str = typer.Option(None, help="none, bahdanau, dot or general"),
    beam: int = typer.Option(None, help="beam size for evaluation"),
    encoding: str = typer.Option(None, help="text encoding"),
    out: Path = OUT,
    config: Path = CONFIG,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH,
    cell: str = CELL,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    resume: bool = RESUME,
    quiet: bool = QUIET,
) -> None:
    """Translate (or summarise): encoder-decoder with attention and beam search; BLEU with sacrebleu.

    Example: rnnkit train translate --src train.de --tgt train.en --out runs/de-en
    """
    from .tasks.translate import TranslateConfig, Translator

    if (dev_src is None) != (dev_tgt is None) or (test_src is None) != (test_tgt is None):
        raise ValueError("give --dev-src with --dev-tgt, and --test-src with --test-tgt")
    flags = {
        "level": level,
        "model.attention": attention,
        "beam_size": beam,
        "encoding": encoding,
        "batch_size": batch_size,
        "trainer.epochs": epochs,
        "trainer.lr": lr,
        "trainer.seed": seed,
        "trainer.progress": False if quiet else None,
    }
    for side in ("encoder", "decoder"):
        flags |= {f"model.{side}.cell": cell, f"model.{side}.hidden_size": hidden, f"model.{side}.num_layers": layers}
    cfg = build_config(TranslateConfig, config, flags)
    dev = (dev_src, dev_tgt) if dev_src else None
    test = (test_src, test_tgt) if test_src else None
    _task, metrics = Translator.train(cfg, src, tgt, out, dev=dev, test=test, overwrite=overwrite, resume=resume)
    _done(out, metrics, f"translation (BLEU, beam {cfg.beam_size})")


@train_app.command("lm")
@friendly
def train_lm(
    data: Path = typer.Option(..., help="a text file"),
    level: str = typer.Option(None, help="tokens: char, word or subword"),
    timestep: int = typer.Option(None, help="truncated-BPTT window in tokens"),
    tie_weights: bool = typer.Option(None, "--tie-weights/--no-tie-weights", help="share embedding and output"),
    encoding: str = typer.Option(None, help="text encoding"),
    out: Path = OUT,
    config: Path = CONFIG,
    epochs: int = EPOCHS,
    lr: float = LR,
    batch_size: int = BATCH,
    cell: str = CELL,
    hidden: int = HIDDEN,
    layers: int = LAYERS,
    seed: int = SEED,
    overwrite: bool = OVERWRITE,
    resume: bool = RESUME,
    quiet: bool = QUIET,
) -> None:
    """Language model over a text: stateful truncated BPTT; loss, perplexity, bits per character.

    Example: rnnkit train lm --data book.txt --level char --timestep 128 --out runs/book
    """
    from .tasks.lm import LanguageModel, LMConfig

    flags = {
        "level": level,
        "timestep": timestep,
        "tie_weights": tie_weights,
        "encoding": encoding,
        "batch_size": batch_size,
        **common(epochs, lr, cell, hidden, layers, seed, quiet),
    }
    cfg = build_config(LMConfig, config, flags)
    _task, metrics = LanguageModel.train(cfg, data, out, overwrite=overwrite, resume=resume)
    _done(out, metrics, "language model (validation)")
