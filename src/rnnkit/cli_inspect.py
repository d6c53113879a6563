"""``rnnkit inspect``: what a trained network remembers, as an HTML report (hidden states, gates, memory horizon)."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_common import console, friendly, resolve_input


def register(app: typer.Typer) -> None:
    """Add the ``inspect`` command to ``app``."""
    app.command(name="inspect")(inspect_command)


@friendly
def inspect_command(
    run: Path = typer.Argument(..., help="run directory made by 'rnnkit train'"),
    data: Path = typer.Option(
        None,
        "--data",
        help="input in the task's format: a series (forecast), texts (classify), CoNLL or sentences (tag), "
        "source sentences one per line (translate), a text file (lm)",
    ),
    text: str = typer.Option(None, "--text", help="text models: inspect this text instead of --data"),
    example: int = typer.Option(0, "--example", help="which example of --data to draw (0-based: window, text ...)"),
    unit: int = typer.Option(None, "--unit", help="text models: colour the input by this unit (default: most varied)"),
    attention: bool = typer.Option(
        None, "--attention/--no-attention", help="translate: the attention map (default: when the model has one)"
    ),
    examples: int = typer.Option(64, "--examples", help="examples the memory horizon and gate saturation average"),
    layer: str = typer.Option(None, "--layer", help="recurrent layer to inspect, e.g. decoder (default: the first)"),
    out: Path = typer.Option(None, "--out", help="directory for report.html and inspect.json (default: RUN/inspect)"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present, else CPU), cpu, cuda or mps"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier report in --out"),
) -> None:
    """Show what a trained network remembers: hidden-state heatmap, top units, gate saturation, memory horizon,
    attention (translate) and the input coloured by a unit (text), in one self-contained report.html.

    Example: rnnkit inspect runs/shakespeare --text "ROMEO: But soft, what light" --out runs/shakespeare/inspect
    """
    from .inspect.report import NUMBERS, REPORT, ReportConfig, inspect_run, lags

    cfg = ReportConfig(example=example, unit=unit, attention=attention, examples=examples, layer=layer)
    target = out if out is not None else run / "inspect"
    numbers = inspect_run(
        run, target, data=resolve_input(data, "--data"), text=text, cfg=cfg, device=device, overwrite=overwrite
    )
    h = numbers["horizon"]
    if h is None:
        console.print(f"{numbers['task']} model, {numbers['cell']} cell: no memory horizon ({numbers['horizon_note']})")
    else:
        steps = lags(h["horizon"], h["steps_per_lag"])
        reach = f"at least {steps} (the whole input)" if h["reached_end"] else steps
        n = h["examples"]
        console.print(
            f"{numbers['task']} model, {numbers['cell']} cell: memory horizon {reach} "
            f"(gradient of {h['output']}, {n} example{'s' if n != 1 else ''})"
        )
    console.print(f"prediction for example {numbers['example']}: {numbers['prediction']}", highlight=False)
    console.print(f"wrote {target / REPORT} ({', '.join(numbers['figures'])}) and {target / NUMBERS}")
