"""GeneratedBatches: fresh samples per batch, a function of (seed, epoch) for exact resume; a recipe that learns."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.data.generated import GeneratedBatches, fixed_batches
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnkit.training.trainer import Callback, Trainer, TrainerConfig


def adding(timestep):
    return lambda n, gen: (lambda x, y: (x, y.unsqueeze(-1)))(*adding_problem(n, timestep, generator=gen))


def test_batches_depend_on_seed_and_epoch_only():
    data = GeneratedBatches(adding(10), batch_size=4, batches=3, seed=7)
    assert len(data) == 3
    first = [x for x, _ in data]
    torch.rand(5)  # the global RNG does not matter
    again = [x for x, _ in data]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # every batch is new
    data.set_epoch(1)
    assert not any(torch.equal(a, b) for a, b in zip(first, (x for x, _ in data)))
    other = GeneratedBatches(adding(10), batch_size=4, batches=3, seed=8)
    assert not torch.equal(first[0], next(iter(other))[0])
    with pytest.raises(ValueError, match="batches must be >= 1"):
        GeneratedBatches(adding(10), batch_size=4, batches=0)


def test_fixed_batches_cover_n_samples():
    batches = fixed_batches(adding(10), 10, 4, seed=0)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert torch.equal(batches[0][0], fixed_batches(adding(10), 10, 4, seed=0)[0][0])


class StopWhenBelow(Callback):
    """Stop once the validation loss is below ``threshold`` (as benchmarks/tasks/adding.py stops a solved cell)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_evaluate(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if metrics["val_loss"] < self.threshold:
            trainer.stop()


def test_adding_recipe_learns_with_the_trainer(tmp_path):
    """The benchmark's recipe (ManyToOne, chrono init, Trainer on fresh batches, stopped once solved) at a short T,
    in seconds: at most 600 updates, stopped once validation is at half the bound, asserted on other sequences."""
    T = 60
    bound = 0.05 * ADDING_BASELINE_MSE
    torch.manual_seed(0)
    model = ManyToOne(
        ManyToOneConfig(
            input=InputConfig(input_size=2),
            rnn=RNNConfig(cell="lstm", hidden_size=32, chrono=T),
            head=HeadConfig(kind="regression"),
        )
    )
    steps = 600
    cfg = TrainerConfig(
        epochs=math.ceil(steps / 100), max_steps=steps, lr=1e-2, eval_every=50, progress=False, device="cpu"
    )

    def loss(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]), batch[1])

    val = fixed_batches(adding(T), 500, 500, seed=1)
    trainer = Trainer(model, cfg, loss, callbacks=[StopWhenBelow(bound / 2)], out_dir=tmp_path)
    state = trainer.fit(GeneratedBatches(adding(T), 32, 100, seed=0), val)
    assert state.evals[-1]["val_loss"] < bound, f"validation MSE {state.evals[-1]['val_loss']:.4f} after {state.step}"
    ((x, y),) = fixed_batches(adding(T), 500, 500, seed=2)  # sequences that did not decide when to stop
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model.eval()(x), y).item()
    assert mse < bound, f"test MSE {mse:.4f} after {state.step} updates at T={T} (bound {bound:.4f})"
