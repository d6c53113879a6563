"""The fast path: run a stack of standard RNN/LSTM/GRU layers on PyTorch's own kernels.

``torch.nn.LSTM.forward`` is a thin wrapper over ``torch.lstm(input, hx, flat_weights, ...)``; this module makes
the same call with the parameters a :class:`~rnnkit.Recurrent` owns (same names, same order), so the two are the
same computation. With ``lengths`` the batch is packed exactly as a user of torch.nn would pack it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

KERNELS = {"lstm": torch.lstm, "gru": torch.gru, "rnn_tanh": torch.rnn_tanh, "rnn_relu": torch.rnn_relu}


def fused_forward(
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
    """Run ``num_layers`` layers of ``mode`` over ``x (B, T, F)`` from ``state`` (tuple of ``(L*D, B, H)``).

    ``weights`` is torch.nn's flat list: per layer, per direction ``w_ih, w_hh[, b_ih, b_hh]``. ``lengths`` is a
    CPU int64 ``(B,)`` tensor with every entry in ``1..T``. Returns ``(output (B, T, D*H), state)``.
    """
    kernel = KERNELS[mode]
    hx: Tensor | tuple[Tensor, ...] = state if mode == "lstm" else state[0]
    weights = list(weights)
    if lengths is None:
        result = kernel(x, hx, weights, bias, num_layers, dropout, training, bidirectional, True)
        return result[0], tuple(result[1:])
    T = x.shape[1]
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    hx = tuple(s.index_select(1, order) for s in state) if mode == "lstm" else state[0].index_select(1, order)
    result = kernel(packed.data, packed.batch_sizes, hx, weights, bias, num_layers, dropout, training, bidirectional)
    out, _ = pad_packed_sequence(
        PackedSequence(result[0], packed.batch_sizes, order, unorder), batch_first=True, total_length=T
    )
    return out, tuple(s.index_select(1, unorder) for s in result[1:])
