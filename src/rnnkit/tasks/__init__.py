"""Tasks: a kind of data, its model, its metrics and its defaults. ``rnnkit.load(path)`` returns a predictor."""

from __future__ import annotations

from pathlib import Path

from ..training.checkpoint import read_config
from .base import Task, model_dir
from .classify import Classifier, ClassifyConfig
from .forecast import ForecastConfig, Forecaster
from .lm import LanguageModel, LMConfig
from .tag import TagConfig, Tagger
from .translate import TranslateConfig, Translator

TASKS: dict[str, type[Task]] = {t.name: t for t in (Forecaster, Classifier, Tagger, Translator, LanguageModel)}


def load(path: str | Path) -> Task:
    """The trained predictor in a run directory (or its ``model/`` directory), of whichever task made it."""
    name = read_config(model_dir(path)).get("task")
    if name not in TASKS:
        raise ValueError(f"{path}: unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name].load(path)


__all__ = [
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
]
