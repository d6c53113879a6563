"""Fast whole-sequence layer-norm LSTM: a C++ loop with a hand-written backward (``csrc/lnlstm.cpp``).

Why C++: autograd over a Python loop records ~20 graph nodes per timestep and spends most of its time in that
bookkeeping (0.1-0.2x the native LSTM's training speed); TorchScript is deprecated and still dispatches every op.
The kernel does one matrix product and one fused element-wise pass per timestep, in both directions, and gets the
weight gradient as one product over all timesteps. It is compiled on first use (:mod:`rnnkit._ext`); where it
cannot be built the layer falls back to the reference unroll. Same numbers either way.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .. import _ext
from .base import Params, State


class _LNLSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, g_hh: Tensor, lw: Tensor, lb: Tensor,
                mask: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
        out, h, c, *saved = _ext.load().lnlstm_forward(u, h0, c0, w_hh, g_hh, lw, lb, mask, eps, True)
        ctx.save_for_backward(*saved, w_hh, g_hh, lw, mask)
        return out, h, c

    @staticmethod
    def backward(ctx: Any, d_out: Tensor, dh: Tensor, dc: Tensor) -> tuple[Tensor | None, ...]:
        grads = _ext.load().lnlstm_backward(d_out.contiguous(), dh, dc, *ctx.saved_tensors)
        return (*grads, None, None)  # d_u, dh0, dc0, dW_hh, dg_hh, d_ln_c_weight, d_ln_c_bias


def lnlstm_sequence(
    u: Tensor, state: State, p: Params, lengths: Tensor | None, eps: float
) -> tuple[Tensor, State] | None:
    """Run the layer-norm LSTM over projected inputs ``u (B, T, 4H)`` from ``state (h, c)``, each ``(B, H)``.

    Returns ``(output (B, T, H), (h_T, c_T))`` — zero outputs past each length, state at the last valid step — or
    ``None`` when the kernel is unavailable (or the tensors are not on the CPU), meaning "use the reference loop".
    """
    if u.device.type != "cpu" or _ext.load() is None:
        return None
    h0, c0 = (s.contiguous() for s in state)
    H = h0.shape[1]
    lb = p.get("ln_c_bias")
    if lb is None:
        lb = h0.new_zeros(H)
    u_t = u.transpose(0, 1).contiguous()  # (T, B, 4H)
    mask = u.new_empty(0)
    if lengths is not None:
        T = u.shape[1]
        mask = (torch.arange(T)[:, None] < lengths[None, :]).to(u.dtype)  # (T, B)
    weights = [p["weight_hh"].contiguous(), p["ln_hh_weight"].contiguous(), p["ln_c_weight"].contiguous(),
               lb.contiguous()]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (u_t, h0, c0, *weights)):
        out, h, c = _LNLSTMFunction.apply(u_t, h0, c0, *weights, mask, eps)
    else:
        out, h, c, *_ = _ext.load().lnlstm_forward(u_t, h0, c0, *weights, mask, eps, False)
    return out.transpose(0, 1), (h, c)
