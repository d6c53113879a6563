"""Tasks: a kind of data, its model, its metrics and its defaults. ``rnnkit.load(path)`` returns a predictor.

The registry maps a task's name to its class; the CLI builds ``rnnkit train <name>`` from it and
:func:`load` finds the class a run was trained with. A new task is one file (a :class:`Task` subclass) and
one line here (or a call to :func:`register_task` from your own code).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from ..training.checkpoint import read_config
from .base import Task, model_dir

# name -> "module:Class" (imported on first use)
REGISTRY: dict[str, str | type[Task]] = {
    "forecast": "rnnkit.tasks.forecast:Forecaster",
    "classify": "rnnkit.tasks.classify:Classifier",
    "tag": "rnnkit.tasks.tag:Tagger",
    "translate": "rnnkit.tasks.translate:Translator",
    "lm": "rnnkit.tasks.lm:LanguageModel",
}


def register_task(cls: type[Task]) -> type[Task]:
    """Make a :class:`Task` subclass available by its ``name`` to ``rnnkit.load`` and the CLI (usable as a
    class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Task) and cls.name):
        raise ValueError(f"register_task: expected a Task subclass with a name, got {cls!r}")
    REGISTRY[cls.name] = cls
    cli = sys.modules.get("rnnkit.cli_train")
    if cli is not None:  # the command line is already built: give it the new task's command too
        cli.make_command(cls)
    return cls


def task_class(name: str) -> type[Task]:
    """The task class registered under ``name``; the error lists the known names."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(REGISTRY)}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = REGISTRY[name] = getattr(importlib.import_module(module), attr)
    return entry


def task_classes() -> dict[str, type[Task]]:
    """Every registered task, by name."""
    return {name: task_class(name) for name in list(REGISTRY)}


def load(path: str | Path, device: str | torch.device = "auto") -> Task:
    """The trained predictor in a run directory (or its ``model/`` directory), of whichever task made it."""
    name = read_config(model_dir(path)).get("task")
    if name not in REGISTRY:
        raise ValueError(f"{path}: unknown task {name!r}; expected one of {sorted(REGISTRY)}")
    return task_class(name).load(path, device)


def __getattr__(attr: str) -> object:
    # the task classes and configs by name (rnnkit.tasks.Forecaster ...) without importing every task up front
    lazy = {
        "Forecaster": "forecast",
        "ForecastConfig": "forecast",
        "Classifier": "classify",
        "ClassifyConfig": "classify",
        "Tagger": "tag",
        "TagConfig": "tag",
        "Translator": "translate",
        "TranslateConfig": "translate",
        "LanguageModel": "lm",
        "LMConfig": "lm",
    }
    if attr in lazy:
        return getattr(importlib.import_module(f"{__name__}.{lazy[attr]}"), attr)
    if attr == "TASKS":
        return task_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "REGISTRY",
    "TASKS",
    "Classifier",
    "ClassifyConfig",
    "ForecastConfig",
    "Forecaster",
    "LMConfig",
    "LanguageModel",
    "TagConfig",
    "Tagger",
    "Task",
    "TranslateConfig",
    "Translator",
    "load",
    "register_task",
    "task_class",
    "task_classes",
]
