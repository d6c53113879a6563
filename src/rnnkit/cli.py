"""The ``rnnkit`` command line (typer)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rnnkit",
    help="Recurrent neural networks on sequential data: train, evaluate, predict, generate, inspect, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """rnnkit: recurrent neural networks on sequential data."""


@app.command()
def demo(
    timestep: int = typer.Option(100, help="sequence length T of the adding problem"),
    seed: int = typer.Option(0, help="seed for weights and data"),
) -> None:
    """Train RNN, LSTM, GRU and minGRU on the adding problem and compare what they remember.

    Example: rnnkit demo --timestep 100
    """
    from .demo import MemoryDemoConfig, run_memory_demo

    if timestep < 2:
        raise typer.BadParameter(f"timestep must be >= 2, got {timestep}")
    run_memory_demo(MemoryDemoConfig(timestep=timestep, seed=seed))


if __name__ == "__main__":
    app()
