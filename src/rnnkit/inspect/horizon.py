"""Memory horizon: how strongly an output at step T depends on the input at each earlier step t.

The curve is the norm of the gradient of one output with respect to what the recurrent layer read at step t,
averaged over examples, as a function of the lag ``T - t``. Vanilla RNNs' curves fall geometrically (the
gradient is a product of Jacobians ``diag(φ') W_hh``); gated cells can keep them up for hundreds of steps. The
horizon is one number: the lag beyond which the curve stays below 1% of its maximum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..recurrent import Recurrent
from ..topologies.encoder_decoder import EncoderDecoder
from ..topologies.many_to_many import ManyToMany
from ..topologies.one_to_many import OneToMany
from .capture import Inputs, find_layer, run_captured

#: models with one output per input step: the output at step T is taken at T
ALIGNED = (Recurrent, ManyToMany, OneToMany)
Output = str | int | Callable[[Tensor], Tensor]


@dataclass
class Horizon:
    """The memory-horizon curve of a model on some examples.

    Attributes:
        curve: ``(max_lag + 1,)`` mean gradient norm at lag ``0, 1, ...`` (lag 0: the output's own step).
        counts: ``(max_lag + 1,)`` examples that reach back that far (sequences have their own lengths).
        by_step: ``(B, T)`` gradient norm per example and input step (0 after the output's step and past lengths).
        ends: ``(B,)`` the step of each example's output (lag 0).
        horizon: the lag beyond which ``curve`` stays below ``threshold * curve.max()``.
        threshold: 0.01 unless asked otherwise.
    """

    curve: Tensor
    counts: Tensor
    by_step: Tensor
    ends: Tensor
    horizon: int
    threshold: float

    @property
    def reached_end(self) -> bool:
        """The curve is still above the threshold at the longest lag the inputs have: the model remembers at
        least that far back, and ``horizon`` is a lower bound."""
        return self.horizon == len(self.curve) - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "reached_end": self.reached_end,
            "threshold": self.threshold,
            "curve": [float(v) for v in self.curve],
            "examples": int(self.by_step.shape[0]),
        }


def horizon_of(curve: Tensor, threshold: float = 0.01) -> int:
    """The largest lag at which ``curve`` is at least ``threshold`` times its maximum (0 for an all-zero curve)."""
    top = float(curve.max()) if len(curve) else 0.0
    if top <= 0:
        return 0
    above = torch.nonzero(curve >= threshold * top).flatten()
    return int(above.max())


def _is_classifier(model: nn.Module) -> bool:
    if isinstance(model, EncoderDecoder):
        return True
    if isinstance(model, OneToMany):
        return model.tokens
    head = getattr(getattr(model, "cfg", None), "head", None)
    return getattr(head, "kind", None) == "classification"


def _reduce(y: Tensor, output: Output, classifier: bool) -> Tensor:
    """One number per example from the selected output ``y (B, ...)``."""
    if callable(output):
        values = output(y)
        if values.dim() != 1 or values.shape[0] != y.shape[0]:
            raise ValueError(f"memory_horizon: output(...) must give one value per example (B,), got {values.shape}")
        return values
    flat = y.reshape(y.shape[0], -1)
    if isinstance(output, int) and not isinstance(output, bool):
        if not -flat.shape[1] <= output < flat.shape[1]:
            raise ValueError(f"memory_horizon: output={output} is out of range: the output has {flat.shape[1]} values")
        return flat[:, output]
    if output != "auto":
        raise ValueError(f"memory_horizon: output must be 'auto', an index or a function, got {output!r}")
    if flat.shape[1] == 1:
        return flat[:, 0]
    if classifier:  # the score of what the model predicts
        return flat.gather(1, flat.argmax(1, keepdim=True)).squeeze(1)
    return flat.sum(1)


def memory_horizon(
    model: nn.Module,
    inputs: Inputs,
    output: Output = "auto",
    *,
    at: int | None = None,
    layer: str | None = None,
    threshold: float = 0.01,
) -> Horizon:
    """How far back a model's output depends on its input: gradient norms over the lag, and the horizon.

    Args:
        model: a :class:`~rnnkit.Recurrent`, any topology, or a task's ``.model``.
        inputs: what the model is called with (as for :func:`~rnnkit.inspect.trace`); a batch of examples.
        output: which output at step T: ``"auto"`` (a single value as it is; for classifiers, language models
            and translators the score of the predicted class/token; otherwise the sum of the output values), an
            index into each example's flattened output, or a function ``output (B, ...) -> (B,)``.
        at: models with one output per input step (``Recurrent``, many-to-many, one-to-many): the step T whose
            output is differentiated (default: each sequence's last valid step); encoder-decoders: the target
            step (default: the last of ``tgt_in``). Other models have one output, after the whole input.
        layer: the recurrent layer whose input steps the gradient is taken for (default: the first; an
            encoder-decoder's encoder).
        threshold: the horizon is where the curve stays below ``threshold`` times its maximum.

    Returns:
        A :class:`Horizon`. The lag of input step ``t`` is ``T - t`` with T each sequence's output step (for
        many-to-one models and encoders, its last valid step). Steps after T (a bidirectional layer's future)
        are not on the curve.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"memory_horizon: threshold must be in (0, 1), got {threshold}")
    rnn = find_layer(model, layer)
    with torch.enable_grad():
        out, got = run_captured(model, inputs, rnn, leaf=True)
        y = out[0] if isinstance(out, tuple) else out
        x = got.x
        B, T = x.shape[:2]
        lengths = torch.full((B,), T) if got.lengths is None else got.lengths.cpu()
        ends = (lengths - 1).clamp(min=0)
        if isinstance(model, ALIGNED):
            if at is not None:
                short = lengths <= at
                if not 0 <= at < T or bool(short.any()):
                    raise ValueError(
                        f"memory_horizon: at={at} is outside the sequences (steps 0..{int(lengths.min()) - 1} exist "
                        f"in every one)"
                    )
                ends = torch.full((B,), at)
            y = y[torch.arange(B), ends.to(y.device)]
        elif isinstance(model, EncoderDecoder):
            steps = y.shape[1]
            k = steps - 1 if at is None else at
            if not 0 <= k < steps:
                raise ValueError(f"memory_horizon: at={at} is outside the {steps} target steps")
            y = y[:, k]
        elif at is not None:
            raise ValueError(f"memory_horizon: a {type(model).__name__} has one output after the whole input; drop at=")
        scalar = _reduce(y, output, _is_classifier(model))
        (grad,) = torch.autograd.grad(scalar.sum(), x, allow_unused=True)
    by_step = torch.zeros(B, T) if grad is None else grad.detach().float().norm(dim=-1).cpu()  # (B, T)
    lag = ends[:, None] - torch.arange(T)[None, :]  # (B, T)
    valid = (lag >= 0) & (torch.arange(T)[None, :] < lengths[:, None])
    by_step = by_step * valid
    size = int(ends.max()) + 1 if B else 1
    curve = torch.zeros(size).index_add_(0, lag[valid], by_step[valid])
    counts = torch.zeros(size).index_add_(0, lag[valid], torch.ones(int(valid.sum())))
    curve = curve / counts.clamp(min=1)
    return Horizon(curve, counts, by_step, ends, horizon_of(curve, threshold), threshold)
