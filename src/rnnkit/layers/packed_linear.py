"""Inference products of ``nn.Linear`` layers through oneDNN, with the weight packed once.

On the CPUs we measured (AMD EPYC, one thread), ``F.linear`` (MKL sgemm) runs a decoder's output layer
(256 -> 6,000 words, 10-320 rows) at 40-70 GFLOP/s and oneDNN with a packed weight at 90-110: beam search spends most
of its time there. The packed weight is kept per layer and repacked when the weight changes (training steps,
``load_state_dict``), so a caller just asks for it on every step. The rounding differs from ``F.linear`` in the last
bits (another summation order); oneDNN's own results do not depend on how many rows a call has.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: set to False to always use ``F.linear`` (e.g. to reproduce results bit for bit with an older version)
ENABLED = True

_ROWS_HINT = 256  # oneDNN picks the packed layout for this many rows; we measured 64-320 to run equally well
_cache: weakref.WeakKeyDictionary[nn.Linear, tuple[tuple, Tensor]] = weakref.WeakKeyDictionary()


def _usable(linear: nn.Linear, x: Tensor) -> bool:
    w = linear.weight
    return (
        ENABLED
        and x.dim() == 2
        and x.dtype == torch.float32
        and w.dtype == torch.float32
        and x.device.type == "cpu"
        and w.device.type == "cpu"
        and not (torch.is_grad_enabled() and (w.requires_grad or x.requires_grad))
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


def _packed(linear: nn.Linear) -> Tensor:
    w, b = linear.weight, linear.bias
    key = (w.data_ptr(), w._version, w.shape, None if b is None else (b.data_ptr(), b._version))
    hit = _cache.get(linear)
    if hit is not None and hit[0] == key:
        return hit[1]
    packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), _ROWS_HINT)
    _cache[linear] = (key, packed)
    return packed


def packed_linear(linear: nn.Linear, x: Tensor) -> Tensor:
    """``linear(x)`` for ``x (N, in)`` -> ``(N, out)``: through oneDNN with a packed weight when no gradient is
    needed and both are float32 on the CPU (outside autocast); else exactly ``linear(x)``."""
    if not _usable(linear, x):
        return linear(x)
    try:
        packed = _packed(linear)
        bias = None if linear.bias is None else linear.bias.detach()
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), packed, bias, "none", [], "")
    except RuntimeError:  # a oneDNN build that refuses the shape: the plain product
        return F.linear(x, linear.weight, linear.bias)
