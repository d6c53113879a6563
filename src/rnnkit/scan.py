"""Linear recurrences ``h_t = a_t * h_{t-1} + b_t`` over whole sequences, the training path of minGRU/minLSTM.

Because their gates see only the input, minGRU and minLSTM reduce to this recurrence with ``a_t, b_t`` known for
every step up front. Two ways to solve it, same numbers:

* :func:`log_space_scan`, the parallel scan (Heinsen 2023): all timesteps at once with two cumulative operations,
  ``log h_t = a*_t + logcumsumexp_{k<=t}(log b_k - a*_k)`` with ``a*_t = sum_{k<=t} log a_k``. It runs in chunks,
  carrying ``h`` between them, which bounds ``|a*|`` so float32 keeps its precision on long sequences. This is the
  path for accelerators, and the portable fallback.
* :func:`sequential_scan`, a C++ kernel (:mod:`rnnkit._ext`) that walks time in order with the ``B*H`` lanes
  vectorised. On a CPU both are O(B T H), and without ``logcumsumexp``/``exp``/``log`` per element the
  sequential walk is about ten times faster, so :func:`linear_recurrence` picks it there.

On a CPU the cells go one step further: :func:`minrnn_sequence` computes their gates, the recurrence and the
lengths in one C++ walk over the projected inputs (``csrc/minrnn.cpp``), with a hand-written backward, instead of
the twenty-odd element-wise passes (each an autograd node) that build ``a_t, b_t`` around the scan.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from . import _ext
from .precision import kernel_float

# log of a coefficient that must vanish (masked steps); finite so that gradients stay finite.
LOG_ZERO = -1e4


def _check(log_a: Tensor, log_b: Tensor, h0: Tensor, name: str) -> None:
    if log_a.shape != log_b.shape or log_a.dim() != 3 or h0.shape != (log_a.shape[0], log_a.shape[2]):
        raise ValueError(
            f"{name}: expected a, b (B, T, H) and h0 (B, H), got {tuple(log_a.shape)}, {tuple(log_b.shape)}, "
            f"{tuple(h0.shape)}"
        )


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor, chunk: int = 256) -> Tensor:
    """Solve ``h_t = a_t h_{t-1} + b_t`` for every ``t`` in parallel over time.

    Args:
        log_a: ``(B, T, H)`` log of the decay ``a_t`` (``a_t > 0``).
        log_b: ``(B, T, H)`` log of the input term ``b_t`` (``b_t > 0``; use :data:`LOG_ZERO` for ``b_t = 0``).
        h0: ``(B, H)`` initial state, any sign (it is carried linearly, outside the logarithm).
        chunk: timesteps per parallel block.

    Returns:
        ``(B, T, H)``: ``h_1 .. h_T``.
    """
    _check(log_a, log_b, h0, "log_space_scan")
    T = log_a.shape[1]
    outs = []
    h = h0
    for start in range(0, T, chunk):
        la, lb = log_a[:, start : start + chunk], log_b[:, start : start + chunk]
        a_star = la.cumsum(1)  # (B, t, H)
        hs = torch.exp(a_star) * h.unsqueeze(1) + torch.exp(a_star + torch.logcumsumexp(lb - a_star, 1))
        outs.append(hs)
        h = hs[:, -1]
    return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class _SequentialScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        h = _ext.load().linear_scan_forward(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        a, h, h0 = ctx.saved_tensors
        da, db, dh0 = _ext.load().linear_scan_backward(grad, a, h, h0)
        return da, db, dh0


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """Solve ``h_t = a_t h_{t-1} + b_t`` step by step in C++ (CPU only): ``a, b (B, T, H)``, ``h0 (B, H)``."""
    _check(a, b, h0, "sequential_scan")
    if _ext.load() is None or a.device.type != "cpu":
        raise RuntimeError("sequential_scan needs the compiled CPU kernels (see rnnkit._ext); use log_space_scan")
    return _SequentialScan.apply(a.contiguous(), b.contiguous(), h0.contiguous())


def linear_recurrence(
    log_a: Tensor, log_b: Tensor, h0: Tensor, impl: Literal["auto", "log", "sequential"] = "auto"
) -> Tensor:
    """``h_1 .. h_T (B, T, H)`` from log-coefficients: the C++ walk on a CPU when built, else the parallel scan."""
    if impl == "sequential" or (impl == "auto" and log_a.device.type == "cpu" and _ext.load() is not None):
        return sequential_scan(torch.exp(log_a), torch.exp(log_b), h0)
    return log_space_scan(log_a, log_b, h0)


class _MinRNN(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor, h0: Tensor, lengths: Tensor, lstm: bool) -> tuple[Tensor, Tensor]:
        out, h = _ext.load().minrnn_forward(u, h0, lengths, lstm)
        ctx.save_for_backward(u, out, h0, lengths)
        ctx.lstm = lstm
        return out, h

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, dh: Tensor) -> tuple[Tensor | None, ...]:
        u, out, h0, lengths = ctx.saved_tensors
        d_u, dh0 = _ext.load().minrnn_backward(d_out, dh, u, out, h0, lengths, ctx.lstm)
        return d_u, dh0, None, None


def minrnn_sequence(u: Tensor, h0: Tensor, lengths: Tensor | None, lstm: bool) -> tuple[Tensor, Tensor] | None:
    """minGRU (``u = k_z, k_h``) or minLSTM (``u = k_f, k_i, k_h``) over projected inputs ``u (B, T, G*H)`` from
    ``h0 (B, H)``: ``(output (B, T, H), h_T)``, zero outputs past each length and the state at its last valid step.
    ``None`` where the C++ kernels cannot run (not built, not a float32/float64 CPU tensor)."""
    if u.device.type != "cpu" or not u.is_floating_point() or _ext.load() is None:
        return None
    dtype = u.dtype  # bf16/fp16 (autocast) run in float32 and get their dtype back
    lens = u.new_empty(0, dtype=torch.long) if lengths is None else lengths.to("cpu", torch.long).contiguous()
    u, h0 = (t.contiguous() for t in kernel_float(u, h0))
    if torch.is_grad_enabled() and (u.requires_grad or h0.requires_grad):
        out, h = _MinRNN.apply(u, h0, lens, lstm)
    else:
        out, h = _ext.load().minrnn_forward(u, h0, lens, lstm)
    return out.to(dtype), h.to(dtype)
