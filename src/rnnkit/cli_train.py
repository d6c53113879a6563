"""``rnnkit train <task>``: one command from a data file to a trained model, its metrics and plots.

Every registered task gets a subcommand built from its declared :class:`~rnnkit.tasks.flags.Flag` list plus the
options all tasks share (declared once, below). Flags default to "not given" so that a ``--config`` file's values
survive; ``--help`` shows the value the task's defaults would use.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from .cli_common import build_config, console, friendly, print_metrics, resolve_input
from .config import replace
from .tasks import task_classes
from .tasks.base import Task
from .tasks.flags import Flag

train_app = typer.Typer(help="Train a model on your data; everything lands in --out.", no_args_is_help=True)


def _every(text: str) -> dict[str, Any]:
    from .training.trainer import parse_every

    steps, minutes = parse_every(text)
    return {"trainer.checkpoint_every": steps, "trainer.checkpoint_minutes": minutes}


# the options every task shares (``{rnn}`` stands for each of the task's recurrent cores)
SHARED = (
    Flag("out", "--out", "run directory for the model, checkpoints, metrics and plots", Path, required=True),
    Flag("config", "--config", "YAML/JSON file of options; flags override it", Path),
    Flag("epochs", "--epochs", "passes over the training data (a fixed length)", int, key="trainer.epochs"),
    Flag("max_epochs", "--max-epochs", "the most passes when --epochs is not given", int, key="trainer.max_epochs"),
    Flag(
        "time_budget",
        "--time-budget",
        "stop after this many minutes, keeping the best model",
        float,
        key="trainer.time_budget",
    ),
    Flag("lr", "--lr", "peak learning rate (AdamW)", float, key="trainer.lr"),
    Flag("batch_size", "--batch-size", "examples per training step", int, key="batch_size"),
    Flag("cell", "--cell", "rnn_tanh, rnn_relu, lstm, gru, layernorm_lstm, mingru or minlstm", key="{rnn}.cell"),
    Flag("hidden", "--hidden", "hidden size H", int, key="{rnn}.hidden_size"),
    Flag("layers", "--layers", "stacked recurrent layers", int, key="{rnn}.num_layers"),
    Flag("seed", "--seed", "seed for weights, data order and dropout", int, key="trainer.seed"),
    Flag("device", "--device", "auto (CUDA if present, else CPU), cpu, cuda or mps", key="trainer.device"),
    Flag(
        "precision",
        "--precision",
        "fp32, bf16 (mixed precision: CPUs with AVX512-BF16/AMX, GPUs) or fp16 (CUDA)",
        key="trainer.precision",
    ),
    Flag(
        "checkpoint_every",
        "--checkpoint-every",
        "also checkpoint every N steps (500) or minutes (10m, 90s)",
        key="trainer.checkpoint_every",
        parse=_every,
    ),
)
SWITCHES = (
    ("overwrite", "--overwrite", "replace an existing run in --out"),
    ("resume", "--resume", "continue the interrupted run in --out"),
    ("quiet", "--quiet", "no progress output"),
)


def _default(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _show(value: Any) -> str | bool:
    if value is None or value == [] or value == ():
        return False
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _option(flag: Flag, task: type[Task]) -> typer.models.OptionInfo:
    shown: str | bool = False
    if flag.key and "{" not in flag.key:
        shown = _show(_default(task.Config(), flag.key))
    elif flag.key:
        shown = _show(_default(task.Config(), flag.key.format(rnn=task.rnn_keys[0])))
    if flag.type is bool and flag.key:
        on, off = flag.flag.split("/")
        shown = on if _default(task.Config(), flag.key) else off
    if not shown and flag.dest in getattr(task, "auto_defaults", {}):  # a default that adapts to the data
        shown = task.auto_defaults[flag.dest]  # type: ignore[attr-defined]
    if flag.dest == "checkpoint_every":
        cfg = task.Config().trainer
        shown = f"{cfg.checkpoint_minutes:g}m" if cfg.checkpoint_minutes else False
    if not shown:
        shown = _unset_default(flag, task)
    text = f"{flag.help} \\[default: {shown}]" if shown else flag.help  # escaped: rich would take [..] as markup
    return typer.Option(... if flag.required else None, flag.flag, help=text, show_default=False)


def _unset_default(flag: Flag, task: type[Task]) -> str | bool:
    """What an option left unset means, where that is not one value: the adaptive training length, a held-out
    part of the training data, no time limit (False: nothing to show)."""
    cfg = task.Config()
    trainer = cfg.trainer
    if flag.dest == "epochs" and trainer.epochs is None:
        if trainer.early_stopping is None:
            return "--max-epochs"
        least = f"after at least {trainer.min_steps} updates, " if trainer.min_steps else ""
        return (
            f"until {trainer.monitor} has not improved for {trainer.early_stopping} evaluations ({least}at most "
            "--max-epochs)"
        )
    if flag.dest == "time_budget" and trainer.time_budget is None:
        return "none"
    part = {"dev": "val_fraction", "dev_src": "val_fraction", "dev_tgt": "val_fraction", "test": "test_fraction"}
    fraction = getattr(cfg, part.get(flag.dest, ""), None)
    if flag.key is None and fraction:
        return f"{fraction:.0%} of the training data, held out at random"
    if flag.key is None and flag.dest in ("test", "test_src", "test_tgt"):
        return "none"
    return False


def _annotation(flag: Flag) -> Any:
    base = flag.type
    return list[base] if flag.multiple else base  # type: ignore[valid-type]


def _overrides(task: type[Task], flags: tuple[Flag, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Dotted config keys for the flags that were given (a value may be None on purpose: ``--quantiles none``)."""
    out: dict[str, Any] = {}
    for flag in flags:
        value = values.get(flag.dest)
        if flag.key is None or value is None or value == []:
            continue
        if flag.parse is not None:
            parsed = flag.parse(value)
            if isinstance(parsed, dict):
                out |= parsed
                continue
            value = parsed
        for rnn in task.rnn_keys if "{rnn}" in flag.key else (None,):
            out[flag.key.format(rnn=rnn) if rnn else flag.key] = value
    return out


def make_command(task: type[Task]) -> None:
    """Register ``rnnkit train <task.name>``."""
    flags = (*task.flags, *SHARED)
    params = [
        inspect.Parameter(f.dest, inspect.Parameter.KEYWORD_ONLY, default=_option(f, task), annotation=_annotation(f))
        for f in flags
    ]
    params += [
        inspect.Parameter(
            dest, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(False, flag, help=text), annotation=bool
        )
        for dest, flag, text in SWITCHES
    ]

    def command(**values: Any) -> None:
        train_task(task, flags, values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = f"{task.summary}\n\nExample: {task.example}"
    command.__name__ = f"train_{task.name}"
    train_app.command(task.name)(friendly(command))


def train_task(task: type[Task], flags: tuple[Flag, ...], values: dict[str, Any]) -> None:
    """What every ``rnnkit train <task>`` does with its flags."""
    from .training import distributed as D

    inputs = {f.dest: resolve_input(values.get(f.dest), f.flag) for f in task.flags if f.key is None}
    overrides = _overrides(task, flags, values)
    if values["quiet"]:
        overrides["trainer.progress"] = False
    by_name = {f.dest: f for f in flags if f.key}

    def from_file(name: str, value: Any) -> dict[str, Any] | None:  # a config file may use the flag names
        flag = by_name.get(name)
        if flag is None:
            return None
        if flag.multiple and not isinstance(value, list):
            value = [value]
        return _overrides(task, (flag,), {name: value})

    cfg = build_config(task.Config, values["config"], overrides, from_file)
    cleared = {k: None for k, v in overrides.items() if v is None}  # given as "none"/"off": unset, not "not given"
    if cleared:
        cfg = replace(cfg, **cleared)
    data, dev, test = task.sources(inputs)
    info = D.init_distributed()  # a no-op unless started by torchrun
    try:
        _, metrics = task.run_training(
            cfg, data, values["out"], dev=dev, test=test, overwrite=values["overwrite"], resume=values["resume"]
        )
    finally:
        D.cleanup()
    if info.is_main:
        training = metrics.pop("training", {})
        print_metrics(f"{task.name}: {values['out']}", metrics)
        if training:
            epochs = training["epochs"]
            console.print(
                f"trained {epochs} epoch{'s' if epochs != 1 else ''} ({training['steps']} steps, "
                f"{training['seconds']:.0f} s); stopped: {training['stopped']}"
            )
        out = values["out"]
        parts = ", ".join(["model/", "metrics.json", "loss.png", *(p for p in task.outputs if (out / p).exists())])
        console.print(f"saved to [bold]{out}[/]: {parts} (load with rnnkit.load({str(out)!r}))")


for _task in task_classes().values():
    make_command(_task)
