"""Standard LSTM/GRU/RNN layers on rnnkit's C++ sequence kernel (``csrc/recurrence.cpp``): forward and backward.

Why a kernel of our own next to torch's: torch's CPU GRU and vanilla RNN are a loop of ATen ops per timestep
(torch.nn.GRU trains at 0.15x torch.nn.LSTM at (B, T, I, H) = (16, 200, 32, 64)), and with lengths every torch
cell runs its packed-sequence path, that same loop (10x the unpadded LSTM at that size). Here a layer direction is
one product ``x W_ih^T + b_ih`` over all timesteps (autograd's, like any linear layer) and one C++ call that walks
time: per step one small matrix product and one vectorised pass per row, in both directions of the time loop, with
each sequence stopping at its own length (zero outputs after it, its state held) and the backward direction
reading each sequence backwards within its length, so no packed or reversed copy is made.

The equations are those of :mod:`rnnkit.cells` (``LSTMCell``, ``GRUCell``, ``RNNCell``), the parameters those of
torch.nn (same names, gate order and layout); tests compare outputs, states and every gradient with torch.nn and
run float64 gradcheck (tests/test_sequence_kernel.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from . import _ext
from .precision import LOW, kernel_float

MODES = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3}
#: cells that ``Recurrent(impl="auto")`` runs on this kernel even without lengths (faster than torch's kernel at
#: every benchmark size); the LSTM without lengths stays on torch's (oneDNN's) fused kernel
KERNEL_MODES = frozenset({"gru", "rnn_tanh", "rnn_relu"})
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
#: a step whose product B*G*H*H reaches this many multiply-adds splits its batch rows over threads; below it,
#: waking a second thread costs more than it saves (measured in benchmarks/speed.py)
PARALLEL_MACS = 1 << 20
DTYPES = (torch.float32, torch.float64)


class _Directions(torch.autograd.Function):
    """``n`` independent layer directions in one C++ call (a bidirectional layer's two run concurrently)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, mode: str, lengths: Tensor, reverse: list[bool], *tensors: Tensor
    ) -> tuple[Tensor, ...]:
        xw, h0, c0, w_hh, b_hh = (list(tensors[k::5]) for k in range(5))
        res = _ext.load().recurrence_forward(MODES[mode], xw, h0, c0, w_hh, b_hh, lengths, reverse, True, PARALLEL_MACS)
        n = len(xw)
        saved = [t for d in range(n) for t in res[6 * d + 3 : 6 * d + 6]]  # hs, cs, acts per direction
        ctx.save_for_backward(lengths, *w_hh, *saved)
        ctx.mode, ctx.reverse, ctx.n = mode, reverse, n
        outs = tuple(t for d in range(n) for t in res[6 * d : 6 * d + 3])  # out, h, c per direction
        if mode != "lstm":
            ctx.mark_non_differentiable(*outs[2::3])
        return outs

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        lengths, *rest = ctx.saved_tensors
        n, lstm = ctx.n, ctx.mode == "lstm"
        w_hh, saved = rest[:n], rest[n:]
        d_out, dh = list(grads[0::3]), list(grads[1::3])
        dc = list(grads[2::3]) if lstm else [g.new_empty(0) for g in dh]
        res = _ext.load().recurrence_backward(
            MODES[ctx.mode],
            d_out,
            dh,
            dc,
            list(saved[0::3]),
            list(saved[1::3]),
            list(saved[2::3]),
            list(w_hh),
            lengths,
            ctx.reverse,
            PARALLEL_MACS,
        )
        out: list[Tensor | None] = [None, None, None]
        for d in range(n):
            d_xw, dh0, dc0, dw, db = res[5 * d : 5 * d + 5]
            out += [d_xw, dh0, dc0 if lstm else None, dw, db]
        return tuple(out)


def available(x: Tensor) -> bool:
    """Whether the kernel can run on ``x``: a floating CPU tensor with the C++ kernels built (bf16/fp16, e.g. under
    autocast, run their recurrence in float32: :func:`rnnkit.precision.kernel_float`)."""
    return x.device.type == "cpu" and (x.dtype in DTYPES or x.dtype in LOW) and _ext.load() is not None


def directions(
    mode: str,
    x: Tensor,
    states: Sequence[tuple[Tensor, Tensor | None]],
    weights: Sequence[Sequence[Tensor | None]],
    lengths: Tensor | None,
) -> list[tuple[Tensor, Tensor, Tensor | None]]:
    """Layer directions over the same ``x (B, T, F)``: direction ``d`` starts from ``states[d] = (h0, c0)`` (each
    ``(B, H)``, ``c0`` None unless LSTM), has weights ``(w_ih, w_hh, b_ih, b_hh)`` (biases may be None) and reads
    each sequence backwards within its length when ``d == 1``. Returns per direction ``(output (B, T, H), h, c)``:
    zero outputs past each length, state at the last valid step."""
    args: list[Tensor] = []
    for (h0, c0), (w_ih, w_hh, b_ih, b_hh) in zip(states, weights):
        assert w_ih is not None and w_hh is not None
        xw = F.linear(x, w_ih, b_ih)  # (B, T, G*H): the input half for every timestep, left to autograd
        b = xw.new_zeros(w_hh.shape[0]) if b_hh is None else b_hh
        c = xw.new_empty(0) if c0 is None else c0
        args += [t.contiguous() for t in kernel_float(xw, h0, c, w_hh, b)]
    lens = x.new_empty(0, dtype=torch.long) if lengths is None else lengths.to("cpu", torch.long).contiguous()
    reverse = [d == 1 for d in range(len(states))]
    if torch.is_grad_enabled() and any(t.requires_grad for t in args):
        res = _Directions.apply(mode, lens, reverse, *args)
    else:
        ext = _ext.load()
        full = ext.recurrence_forward(MODES[mode], *(args[k::5] for k in range(5)), lens, reverse, False, PARALLEL_MACS)
        res = [t for d in range(len(states)) for t in full[6 * d : 6 * d + 3]]
    return [(res[3 * d], res[3 * d + 1], res[3 * d + 2] if mode == "lstm" else None) for d in range(len(states))]


def kernel_forward(
    mode: str,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Sequence[Tensor],
    *,
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    lengths: Tensor | None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run ``num_layers`` layers of ``mode`` over ``x (B, T, F)`` from ``state`` (tuple of ``(L*D, B, H)``), the
    same contract as :func:`rnnkit.fused.fused_forward` (torch.nn's flat ``weights``; ``lengths`` a CPU int64
    ``(B,)`` tensor with entries in ``0..T``, or None). Returns ``(output (B, T, D*H), state)``."""
    D = 2 if bidirectional else 1
    per = 4 if bias else 2
    lstm = mode == "lstm"
    lens = None if lengths is None else lengths.to("cpu", torch.long).contiguous()
    hs, cs = [], []
    layer_in = x
    for k in range(num_layers):
        idx = [k * D + d for d in range(D)]
        ws = [list(weights[i * per : (i + 1) * per]) + ([] if bias else [None, None]) for i in idx]
        starts = [(state[0][i], state[1][i] if lstm else None) for i in idx]
        outs = []
        for out, h, c in directions(mode, layer_in, starts, ws, lens):
            outs.append(out)
            hs.append(h)
            if c is not None:
                cs.append(c)
        layer_in = torch.cat(outs, -1) if D == 2 else outs[0]
        if dropout and training and k < num_layers - 1:
            layer_in = F.dropout(layer_in, dropout, True)
    dtype = x.dtype  # bf16/fp16 inputs ran in float32 and get their own dtype back
    finals = (torch.stack(hs), torch.stack(cs)) if lstm else (torch.stack(hs),)
    return layer_in.to(dtype), tuple(f.to(dtype) for f in finals)
