"""Output heads: classification and regression (multi-step horizons, quantiles with the pinball loss)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import option


@dataclass
class HeadConfig:
    """What the model predicts.

    Attributes:
        kind: ``classification`` (``num_classes`` logits) or ``regression``.
        num_classes: classes (classification).
        output_size: targets per step (regression), e.g. 1 for a univariate forecast.
        horizon: future steps predicted at once (regression from one vector, e.g. a forecaster's horizon).
        quantiles: predict these quantiles (each in (0, 1)) instead of a point value, trained with the pinball
            loss; e.g. ``(0.1, 0.5, 0.9)`` gives an 80% interval and the median.
        hidden: a hidden layer of this size (ReLU) before the output, or 0 for a linear head.
        dropout: dropout before the head.
    """

    kind: str = "classification"
    num_classes: int = 2
    output_size: int = 1
    horizon: int = 1
    quantiles: tuple[float, ...] | None = None
    hidden: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ValueError(f"HeadConfig: kind must be 'classification' or 'regression', got {self.kind!r}")
        if self.kind == "classification" and self.num_classes < 2:
            raise ValueError(f"HeadConfig: classification needs num_classes >= 2, got {self.num_classes}")
        if self.output_size < 1 or self.horizon < 1:
            raise ValueError(
                f"HeadConfig: output_size and horizon must be >= 1, got {self.output_size}, {self.horizon}"
            )
        if self.quantiles is not None:
            if not self.quantiles or not all(0 < q < 1 for q in self.quantiles):
                raise ValueError(f"HeadConfig: {option('quantiles')} must be in (0, 1), got {self.quantiles}")
            if list(self.quantiles) != sorted(set(self.quantiles)):
                raise ValueError(
                    f"HeadConfig: {option('quantiles')} must be increasing and distinct, got {self.quantiles}"
                )


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean quantile (pinball) loss: ``pred (..., Q)``, ``target (...)``, ``quantiles (Q,)``.

    For quantile q and error e = y - ŷ the loss is ``max(q e, (q - 1) e)``: minimised by the true q-quantile.
    """
    err = target.unsqueeze(-1) - pred
    return torch.maximum(quantiles * err, (quantiles - 1) * err).mean()


def _mlp(size: int, out: int, cfg: HeadConfig) -> nn.Module:
    layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
    if cfg.hidden:
        layers += [nn.Linear(size, cfg.hidden), nn.ReLU()]
        size = cfg.hidden
    layers.append(nn.Linear(size, out))
    return nn.Sequential(*layers)


class ClassificationHead(nn.Module):
    """``(..., size)`` -> logits ``(..., num_classes)``; ``loss`` is cross-entropy (``ignore_index`` for padding)."""

    def __init__(self, size: int, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = _mlp(size, cfg.num_classes, cfg)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)

    def loss(self, logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
        if target.dtype != torch.long:
            raise ValueError(f"classification targets must be class ids (int64), got {target.dtype}")
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=ignore_index)


class RegressionHead(nn.Module):
    """``(B, size)`` -> ``(B, horizon, output_size)``, or ``(B, horizon, output_size, Q)`` with quantiles.

    Per-timestep use (many-to-many) works on ``(B, T, size)`` with ``horizon = 1`` and gives ``(B, T, output_size)``.
    ``loss`` is MSE, or the pinball loss over all quantiles.
    """

    def __init__(self, size: int, cfg: HeadConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.q = len(cfg.quantiles) if cfg.quantiles else 1
        self.net = _mlp(size, cfg.horizon * cfg.output_size * self.q, cfg)
        self.register_buffer("quantiles", torch.tensor(cfg.quantiles or [], dtype=torch.float32), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        out = self.net(h)
        lead = h.shape[:-1]
        per_step = h.dim() == 3  # (B, T, size): one output per timestep
        shape = (*lead, self.cfg.output_size) if per_step else (*lead, self.cfg.horizon, self.cfg.output_size)
        return out.view(*shape, self.q) if self.cfg.quantiles else out.view(shape)

    def loss(self, pred: Tensor, target: Tensor) -> Tensor:
        want = pred.shape[:-1] if self.cfg.quantiles else pred.shape
        if target.shape != want:
            raise ValueError(f"regression target must have shape {tuple(want)}, got {tuple(target.shape)}")
        if self.cfg.quantiles:
            return pinball_loss(pred, target, self.quantiles.to(pred.dtype))
        return F.mse_loss(pred, target)

    def point(self, pred: Tensor) -> Tensor:
        """The point forecast: the median quantile (or the one nearest 0.5), or the prediction itself."""
        if not self.cfg.quantiles:
            return pred
        k = min(range(self.q), key=lambda i: abs(self.cfg.quantiles[i] - 0.5))  # type: ignore[index]
        return pred[..., k]


def make_head(size: int, cfg: HeadConfig) -> ClassificationHead | RegressionHead:
    return ClassificationHead(size, cfg) if cfg.kind == "classification" else RegressionHead(size, cfg)
