"""The memory demo: which cells can carry information across T timesteps? (the adding problem)

Each cell reads sequences of T (value, marker) pairs and must output the sum of the two marked values. Predicting
the mean scores MSE 1/6 ≈ 0.167, so a model near 0.167 has learned nothing; one near 0 remembered both values
across the gap. At T = 100 a vanilla tanh RNN stays at the baseline while LSTM, GRU and minGRU solve it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torch import nn

from .data.synthetic import ADDING_BASELINE_MSE, adding_problem
from .recurrent import Recurrent


@dataclass(frozen=True)
class MemoryDemoConfig:
    """Sizes of the adding-problem comparison.

    Attributes:
        timestep: sequence length T (the gap the cells must bridge).
        hidden_size: H of every cell.
        batch_size: sequences per training step.
        lr: Adam learning rate.
        steps: the most training steps each cell gets, by cell name.
        eval_every: steps between validation checks.
        solved_mse: a cell stops early once its validation MSE is below this.
        seed: seeds weights and data.
    """

    timestep: int = 100
    hidden_size: int = 32
    batch_size: int = 64
    lr: float = 1e-2
    steps: tuple[tuple[str, int], ...] = (("rnn_tanh", 600), ("lstm", 2000), ("gru", 1000), ("mingru", 2000))
    eval_every: int = 100
    solved_mse: float = 0.005
    seed: int = 0


@dataclass
class MemoryResult:
    cell: str
    steps: int
    seconds: float
    val_mse: float

    @property
    def solved(self) -> bool:
        return self.val_mse < 0.1 * ADDING_BASELINE_MSE


class _LastStepRegressor(nn.Module):
    """Recurrent layer + linear head on the output after the last timestep."""

    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        self.rnn = Recurrent(cell, 2, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def _train_one(
    cell: str, max_steps: int, cfg: MemoryDemoConfig, val: tuple[torch.Tensor, torch.Tensor], progress: Progress
) -> MemoryResult:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = _LastStepRegressor(cell, cfg.hidden_size)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    task = progress.add_task(f"{cell:>9}", total=max_steps, loss="", val="")
    start, val_mse, step = time.perf_counter(), float("nan"), 0
    for step in range(1, max_steps + 1):
        x, y = adding_problem(cfg.batch_size, cfg.timestep, generator=gen)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        progress.update(task, advance=1, loss=f"loss {loss.item():.4f}")
        if step % cfg.eval_every == 0 or step == max_steps:
            with torch.no_grad():
                val_mse = nn.functional.mse_loss(model(val[0]), val[1]).item()
            progress.update(task, val=f"val {val_mse:.4f}")
            if val_mse < cfg.solved_mse:
                break
    progress.update(task, total=step, completed=step)  # an early stop shows the steps it took
    return MemoryResult(cell, step, time.perf_counter() - start, val_mse)


def run_memory_demo(cfg: MemoryDemoConfig | None = None, console: Console | None = None) -> list[MemoryResult]:
    """Train each cell on the adding problem, show progress, print the table; returns the results."""
    cfg = cfg or MemoryDemoConfig()
    console = console or Console()
    console.print(
        f"[bold]Adding problem, T = {cfg.timestep}[/]: output the sum of the two marked values. "
        f"Predicting the mean scores MSE {ADDING_BASELINE_MSE:.3f}."
    )
    val = adding_problem(1000, cfg.timestep, generator=torch.Generator().manual_seed(cfg.seed + 10_000))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[loss]}"),
        TextColumn("{task.fields[val]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        results = [_train_one(cell, steps, cfg, val, progress) for cell, steps in cfg.steps]
    title = f"Validation MSE on the adding problem (T = {cfg.timestep}); baseline {ADDING_BASELINE_MSE:.3f}"
    table = Table(title=title)
    for col in ("cell", "steps", "seconds", "val MSE", "vs baseline", "remembered?"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            r.cell,
            str(r.steps),
            f"{r.seconds:.1f}",
            f"{r.val_mse:.4f}",
            f"{r.val_mse / ADDING_BASELINE_MSE:.2f}x",
            "yes" if r.solved else "no",
        )
    console.print(table)
    return results
