"""Output heads: shapes, the pinball loss, point forecasts from quantiles, config checks."""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.heads import ClassificationHead, HeadConfig, RegressionHead, pinball_loss


def test_pinball_loss_definition_and_its_minimiser_is_the_quantile():
    q = torch.tensor([0.1, 0.9])
    pred = torch.tensor([[1.0, 1.0]])
    target = torch.tensor([3.0])  # error 2: 0.1*2 and 0.9*2
    torch.testing.assert_close(pinball_loss(pred, target, q), torch.tensor((0.2 + 1.8) / 2))
    y = torch.randn(10_000)
    grid = torch.linspace(-3, 3, 601)
    losses = torch.stack([pinball_loss(torch.full((10_000, 1), float(c)), y, torch.tensor([0.9])) for c in grid])
    assert abs(float(grid[losses.argmin()]) - float(y.quantile(0.9))) < 0.03


def test_regression_shapes_and_point():
    head = RegressionHead(8, HeadConfig(kind="regression", horizon=4, output_size=2, quantiles=(0.1, 0.5, 0.9)))
    pred = head(torch.randn(3, 8))
    assert pred.shape == (3, 4, 2, 3)
    torch.testing.assert_close(head.point(pred), pred[..., 1])
    assert head.loss(pred, torch.randn(3, 4, 2)) > 0
    with pytest.raises(ValueError, match=r"target must have shape \(3, 4, 2\)"):
        head.loss(pred, torch.randn(3, 4))
    per_step = RegressionHead(8, HeadConfig(kind="regression", output_size=2))
    assert per_step(torch.randn(3, 7, 8)).shape == (3, 7, 2)


def test_classification_head():
    head = ClassificationHead(8, HeadConfig(num_classes=5, hidden=16, dropout=0.1))
    logits = head(torch.randn(3, 8))
    assert logits.shape == (3, 5)
    with pytest.raises(ValueError, match="class ids"):
        head.loss(logits, torch.zeros(3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "ranking"}, "kind must be"),
        ({"num_classes": 1}, "num_classes >= 2"),
        ({"kind": "regression", "horizon": 0}, "horizon must be >= 1"),
        ({"kind": "regression", "quantiles": (0.5, 1.2)}, r"quantiles must be in \(0, 1\)"),
        ({"kind": "regression", "quantiles": (0.9, 0.1)}, "increasing"),
    ],
)
def test_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeadConfig(**kwargs)
