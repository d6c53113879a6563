"""One timestep of a stack of standard RNN/LSTM/GRU layers on PyTorch's cell kernels (``Recurrent.step``).

Streaming and serving advance a model one observation at a time, so the per-call cost is mostly Python: a
``Recurrent.step`` that went through each cell's ``project``/``recur`` equations paid ~10 small ops per layer. Here a
layer is one call of the kernel ``torch.nn.LSTMCell`` itself runs (``torch.lstm_cell`` ...), with the layer's own
parameters; at large batches the LSTM goes through ``torch.lstm`` on a one-step sequence instead, which reaches
oneDNN's fused RNN primitive (about twice the cell kernel's speed at B=1000 on a 2-core CPU,
``benchmarks/speed.py``). Same equations, same parameters: the reference path stays the oracle in tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

CELL_KERNELS = {
    "lstm": torch.lstm_cell,
    "gru": torch.gru_cell,
    "rnn_tanh": torch.rnn_tanh_cell,
    "rnn_relu": torch.rnn_relu_cell,
}
#: from this many rows on, an LSTM step runs as a one-step torch.lstm sequence (oneDNN) rather than the cell kernel
LSTM_LAYER_KERNEL_ROWS = 256


def fused_step(
    mode: str,
    x: Tensor,
    state: tuple[Tensor, ...],
    weights: Sequence[Tensor],
    *,
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Advance ``num_layers`` unidirectional layers of ``mode`` by one step: ``x (B, F)``, ``state`` a tuple of
    ``(L, B, H)`` -> ``(y (B, H), state)``. ``weights`` is torch.nn's flat list (per layer ``w_ih, w_hh[, b_ih,
    b_hh]``); dropout applies to the outputs of every layer but the last, in training (as torch.nn)."""
    if mode == "lstm" and x.shape[0] >= LSTM_LAYER_KERNEL_ROWS and x.device.type == "cpu":
        out, h, c = torch.lstm(x.unsqueeze(1), state, list(weights), bias, num_layers, dropout, training, False, True)
        return out[:, 0], (h, c)
    kernel = CELL_KERNELS[mode]
    per = 4 if bias else 2
    lstm = mode == "lstm"
    if num_layers == 1:  # the common case (serving, decoders), without the per-layer lists
        w = weights if bias else (*weights, None, None)
        if lstm:
            h, c = kernel(x, (state[0][0], state[1][0]), *w)
            return h, (h.unsqueeze(0), c.unsqueeze(0))
        h = kernel(x, state[0][0], *w)
        return h, (h.unsqueeze(0),)
    hs, cs = [], []
    y = x
    for k in range(num_layers):
        w = weights[k * per : (k + 1) * per]
        if not bias:
            w = (*w, None, None)
        if lstm:
            h, c = kernel(y, (state[0][k], state[1][k]), *w)
            cs.append(c)
        else:
            h = kernel(y, state[0][k], *w)
        hs.append(h)
        y = h
        if dropout and training and k < num_layers - 1:
            y = F.dropout(y, dropout, True)
    return hs[-1], ((torch.stack(hs), torch.stack(cs)) if lstm else (torch.stack(hs),))
