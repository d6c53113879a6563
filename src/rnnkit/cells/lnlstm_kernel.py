"""Fast whole-sequence layer-norm LSTM: a C++ loop with a hand-written backward (``csrc/lnlstm.cpp``).

Why C++: autograd over a Python loop records ~20 graph nodes per timestep and spends most of its time in that
bookkeeping (0.1-0.2x the native LSTM's training speed); TorchScript is deprecated and still dispatches every op.
The kernel takes ``x W_ih^T`` and does everything else of the cell itself: one matrix product and a few fused
element-wise passes per timestep, in both directions, with parameter gradients reduced over all timesteps at the
end. It is compiled on first use (:mod:`rnnkit._ext`); where it cannot be built the layer falls back to the
reference unroll. Same numbers either way (to float32 rounding; see tests/test_lnlstm_kernel.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from .. import _ext
from ..precision import kernel_float
from ..sequence_kernel import PARALLEL_MACS
from .base import Params, State


class _LNLSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        g_ih: Tensor,
        b_ih: Tensor,
        g_hh: Tensor,
        lw: Tensor,
        lb: Tensor,
        mask: Tensor,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor]:
        out, h, c, *saved = _ext.load().lnlstm_forward(
            xw, h0, c0, w_hh, g_ih, b_ih, g_hh, lw, lb, mask, eps, True, PARALLEL_MACS
        )
        ctx.save_for_backward(xw, w_hh, g_ih, g_hh, lw, mask, *saved)
        return out, h, c

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, dh: Tensor, dc: Tensor) -> tuple[Tensor | None, ...]:
        xw, w_hh, g_ih, g_hh, lw, mask, *saved = ctx.saved_tensors
        grads = _ext.load().lnlstm_backward(d_out, dh, dc, xw, saved, w_hh, g_ih, g_hh, lw, mask, PARALLEL_MACS)
        return (*grads, None, None)  # d_xw, dh0, dc0, dW_hh, dg_ih, db_ih, dg_hh, d_ln_c_weight, d_ln_c_bias


def lnlstm_sequence(
    x: Tensor, state: State, p: Params, lengths: Tensor | None, eps: float
) -> tuple[Tensor, State] | None:
    """Run the layer-norm LSTM over ``x (B, T, F)`` from ``state (h, c)``, each ``(B, H)``.

    Returns ``(output (B, T, H), (h_T, c_T))`` — zero outputs past each length, state at the last valid step — or
    ``None`` when the kernel is unavailable (or the tensors are not on the CPU), meaning "use the reference loop".
    """
    if x.device.type != "cpu" or not x.is_floating_point() or _ext.load() is None:
        return None
    G = p["weight_hh"].shape[0]
    xw = F.linear(x, p["weight_ih"])  # (B, T, 4H): the only input-side op left to autograd
    zeros = xw.new_zeros(G, dtype=p["weight_hh"].dtype)
    params = [
        p["weight_hh"],
        p["ln_ih_weight"],
        p.get("bias_ih", zeros),
        p["ln_hh_weight"],
        p["ln_c_weight"],
        p.get("ln_c_bias", zeros[: G // 4]),
    ]
    # bf16/fp16 (autocast) run in float32 and get their dtype back
    xw, h0, c0, *params = (t.contiguous() for t in kernel_float(xw, *state, *params))
    mask = xw.new_empty(0)
    if lengths is not None:
        mask = (torch.arange(x.shape[1])[:, None] < lengths[None, :]).to(xw.dtype)  # (T, B)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (xw, h0, c0, *params)):
        out, h, c = _LNLSTMFunction.apply(xw, h0, c0, *params, mask, eps)
    else:
        out, h, c, *_ = _ext.load().lnlstm_forward(xw, h0, c0, *params, mask, eps, False, PARALLEL_MACS)
    return out.to(x.dtype), (h.to(x.dtype), c.to(x.dtype))
