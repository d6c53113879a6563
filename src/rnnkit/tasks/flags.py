"""How a task declares its command-line flags: data, not code, so the CLI builds every ``rnnkit train <task>``
command from the task registry and the options all tasks share are declared once (in :mod:`rnnkit.cli_train`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    """One ``rnnkit train <task>`` option.

    Attributes:
        dest: the Python name the value arrives under (``time_column``).
        flag: the option as typed (``--time-column``); for booleans ``--crf/--no-crf``.
        help: what it does (the default is added to ``--help`` from the task's config).
        type: ``str``, ``int``, ``float``, ``bool`` or ``Path``.
        key: the dotted config key it sets (``series.time_column``); ``None`` for an input file the task reads.
        multiple: may be given several times (a list).
        required: must be given.
        parse: turns the typed text into the config value (e.g. ``"0.1,0.9"`` -> ``(0.1, 0.9)``).
    """

    dest: str
    flag: str
    help: str
    type: type = str
    key: str | None = None
    multiple: bool = False
    required: bool = False
    parse: Callable[[Any], Any] | None = None


def parse_floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """``"0.1,0.5,0.9"`` -> ``(0.1, 0.5, 0.9)``; an error names the flag."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated numbers like 0.1,0.5,0.9, got {text!r}") from None
