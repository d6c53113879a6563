"""Error hints in the caller's own words: a Python keyword for API users, a flag for command-line users.

Library code writes ``f"... pass {option('missing', 'interpolate')}"``. Called from Python that reads
``missing='interpolate'``; under the CLI (which wraps every command in :func:`cli_style`) it reads
``--missing interpolate``, so a user is never told a keyword they cannot type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_STYLE: ContextVar[str] = ContextVar("rnnkit_hint_style", default="python")

# option name -> CLI flag, where the flag is not simply --name-with-dashes; None: only settable in --config
FLAGS: dict[str, str | None] = {
    "train": "--train",
    "val": "--val",
    "test": "--test",
    "hidden_size": "--hidden",
    "num_layers": "--layers",
    "text_column": "--text",
    "label_column": "--label",
    "past_covariates": "--past",
    "future_covariates": "--future",
    "target": "--target",
    "lr": "--lr",
    "clip_norm": None,
    "stride": None,
    "scaler": None,
    "token_column": None,
    "separator": None,
    "max_vocab": None,
    "min_freq": None,
    "checkpoint_minutes": "--checkpoint-every",
    "min_steps": None,
    "progress_seconds": None,
    "tbptt": None,
    "log_every": None,
    "max_steps": None,
    "early_stopping": None,
    "mode": None,
    "dropout": None,
    "embedding_dim": None,
    "top_k": "--top-k",
    "top_p": "--top-p",
}


def option(name: str, value: Any = None) -> str:
    """How to set option ``name`` (to ``value``) in the current front end: ``missing='interpolate'`` from Python,
    ``--missing interpolate`` from the command line. ``name`` may be dotted (``series.missing``): the CLI uses the
    last part."""
    short = name.rsplit(".", 1)[-1]
    if _STYLE.get() == "cli":
        flag = FLAGS.get(short, "--" + short.replace("_", "-"))
        if flag is None:
            return f"'{short}: {value}' in a --config file" if value is not None else f"'{short}' in a --config file"
        return flag if value is None else f"{flag} {value}"
    return short if value is None else f"{short}={value!r}"


def style() -> str:
    """``"python"`` or ``"cli"``: who will read the message."""
    return _STYLE.get()


@contextlib.contextmanager
def cli_style() -> Iterator[None]:
    """Within this block, :func:`option` names command-line flags."""
    token = _STYLE.set("cli")
    try:
        yield
    finally:
        _STYLE.reset(token)
