"""Pooling: 'last' is the state at each sequence's end (both directions), the others ignore padding."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.layers.pooling import Pooling


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_pooling_is_last_forward_and_first_backward(bidirectional):
    rnn = Recurrent("gru", 3, 5, num_layers=2, bidirectional=bidirectional)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    out, (h,) = rnn(x, lengths=lengths)
    pooled = Pooling("last", rnn.output_size, rnn.num_directions)(out, lengths, h)
    for b, n in enumerate(lengths.tolist()):
        forward_last = out[b, n - 1, :5]
        torch.testing.assert_close(pooled[b, :5], forward_last)
        if bidirectional:
            torch.testing.assert_close(pooled[b, 5:], out[b, 0, 5:])


@pytest.mark.parametrize("kind", ["mean", "max", "attention"])
def test_padding_does_not_reach_the_pooled_vector(kind):
    pool = Pooling(kind, 4)
    out = torch.randn(2, 5, 4)
    lengths = torch.tensor([5, 2])
    out2 = out.clone()
    out2[1, 2:] = 1e3
    a, b = pool(out, lengths, None), pool(out2, lengths, None)
    torch.testing.assert_close(a, b)
    if kind == "mean":
        torch.testing.assert_close(a[1], out[1, :2].mean(0))
    if kind == "max":
        torch.testing.assert_close(a[1], out[1, :2].max(0).values)
    if kind == "attention":
        assert torch.all(pool.last_weights[1, 2:] == 0)
        torch.testing.assert_close(pool.last_weights.sum(1), torch.ones(2))


def test_unknown_pooling_and_empty_sequences():
    with pytest.raises(ValueError, match="unknown pooling 'sum'; expected one of"):
        Pooling("sum", 4)
    with pytest.raises(ValueError, match="at least one step"):
        Pooling("mean", 4)(torch.randn(2, 3, 4), torch.tensor([3, 0]), None)
