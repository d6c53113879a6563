"""Generated memory tasks."""

from __future__ import annotations

import pytest
import torch

from rnnkit.data.synthetic import ADDING_BASELINE_MSE, adding_problem, copy_memory


def test_adding_problem_marks_one_value_in_each_half():
    x, y = adding_problem(500, 40, generator=torch.Generator().manual_seed(0))
    assert x.shape == (500, 40, 2) and y.shape == (500, 1)
    marker = x[..., 1]
    assert torch.all(marker.sum(1) == 2)
    assert torch.all(marker[:, :20].sum(1) == 1) and torch.all(marker[:, 20:].sum(1) == 1)
    torch.testing.assert_close(y[:, 0], (x[..., 0] * marker).sum(1))
    assert abs(((y - 1.0) ** 2).mean().item() - ADDING_BASELINE_MSE) < 0.02


def test_same_generator_seed_same_data():
    a = adding_problem(4, 10, generator=torch.Generator().manual_seed(3))
    b = adding_problem(4, 10, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_copy_memory_layout():
    x, y = copy_memory(3, delay=5, length=4, symbols=6, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 13)
    torch.testing.assert_close(y[:, -4:], x[:, :4])
    assert torch.all(x[:, 4 + 5 - 1] == 7)
    assert torch.all(y[:, :-4] == 0)


def test_bad_sizes():
    with pytest.raises(ValueError, match="timestep >= 2"):
        adding_problem(2, 1)
    with pytest.raises(ValueError, match="delay >= 1"):
        copy_memory(2, 0)
