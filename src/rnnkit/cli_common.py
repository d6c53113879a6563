"""Shared pieces of the command line: error handling, config files with flag overrides, printing results."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from .config import from_dict, replace, to_dict
from .errors import cli_style

console = Console()
err_console = Console(stderr=True)
STATE = {"debug": False}
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn expected failures into one line on stderr and a non-zero exit (full traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with cli_style():  # error hints name flags (--missing interpolate), not Python keywords
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt as exc:
            if STATE["debug"]:
                raise
            err_console.print(f"[yellow]interrupted[/]: {str(exc) or 'stopped by the user'}", highlight=False)
            raise typer.Exit(130) from None
        except EOFError as exc:  # click would turn it into a bare "Aborted." (e.g. a truncated .gz file)
            if STATE["debug"]:
                raise
            err_console.print(f"[bold red]error[/]: unexpected end of input ({exc or 'truncated file?'})")
            raise typer.Exit(1) from None
        except (
            ValueError,
            FileNotFoundError,
            IsADirectoryError,
            PermissionError,
            FloatingPointError,
            UnicodeDecodeError,
        ) as exc:
            if STATE["debug"]:
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err_console.print(f"[bold red]error[/]: {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def build_config(
    cls: type,
    config_file: Path | None,
    overrides: dict[str, Any],
    flags: Callable[[str, Any], dict[str, Any] | None] | None = None,
) -> Any:
    """Defaults, then the config file (YAML/JSON), then the flags that were given (dotted keys).

    A config file may use the config's own nested layout (``trainer: {epochs: 3}``) or the command's flag names
    (``epochs: 3``, ``hidden: 64``, ``missing: interpolate``): ``flags(name, value)`` turns a flag name into
    dotted keys (None if ``name`` is no flag)."""
    data: dict[str, Any] = to_dict(cls())
    if config_file is not None:
        if not config_file.is_file():
            raise ValueError(f"config file {config_file} does not exist")
        import yaml

        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{config_file}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of options at the top level")
        dotted: dict[str, Any] = {}
        for key in [k for k in loaded if k not in data and flags is not None]:
            found = flags(str(key).lstrip("-").replace("-", "_"), loaded[key])
            if found is not None:
                dotted |= found
                del loaded[key]
        data = _merge(data, loaded)
        for key, value in dotted.items():
            *path, last = key.split(".")
            node = data
            for part in path:
                node = node.setdefault(part, {})
            node[last] = value
    cfg = from_dict(cls, data, where=str(config_file) if config_file else cls.__name__)
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **given) if given else cfg


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not key.endswith("options"):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    """A table of (possibly nested) metrics."""
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")

    def rows(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                rows(f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}", v)
        else:
            table.add_row(prefix, f"{value:.4f}" if isinstance(value, float) else str(value))

    rows("", metrics)
    console.print(table)


def save_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")


def resolve_input(value: Any, flag: str) -> Any:
    """An input path as given, or, when a relative path is not found here, the same path inside the data
    directory (``$RNNKIT_DATA``, default ``../shared/data``), so ``--data conll2003/train.txt`` works from any
    folder. Lists are resolved item by item; other values pass through."""
    if isinstance(value, list):
        return [resolve_input(v, flag) for v in value]
    if not isinstance(value, Path) or value.exists() or value.is_absolute():
        return value
    from .data import data_dir

    candidate = data_dir() / value
    if candidate.exists():
        return candidate
    raise ValueError(
        f"{flag} {value}: no such file here ({Path.cwd()}) or in the data directory {data_dir()} "
        "(set RNNKIT_DATA to where your data lives)"
    )
