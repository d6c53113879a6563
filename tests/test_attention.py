"""Attention: masked positions get zero weight, weights sum to one, shapes, size checks."""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.attention import BahdanauAttention, LuongAttention, make_attention


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general"])
def test_weights_are_a_distribution_over_valid_positions(kind):
    attn = make_attention(kind, 8, 8)
    keys = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    context, weights = attn(torch.randn(3, 8), keys, mask)
    assert context.shape == (3, 8) and weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    torch.testing.assert_close(context[2], keys[2, 0])
    keys2 = keys.clone()
    keys2[~mask] = 99.0
    torch.testing.assert_close(attn(torch.randn(3, 8) * 0 + 1, keys, mask)[0], attn(torch.ones(3, 8), keys2, mask)[0])


def test_many_queries_at_once_equal_one_by_one():
    attn = LuongAttention(6, 4, "general")
    q, keys = torch.randn(2, 7, 6), torch.randn(2, 5, 4)
    ctx, w = attn(q, keys)
    assert ctx.shape == (2, 7, 4) and w.shape == (2, 7, 5)
    for t in range(7):
        c_t, w_t = attn(q[:, t], keys)
        torch.testing.assert_close(ctx[:, t], c_t)
        torch.testing.assert_close(w[:, t], w_t)


def test_bahdanau_scores_follow_the_formula():
    attn = BahdanauAttention(3, 4, 5)
    q, k = torch.randn(1, 3), torch.randn(1, 2, 4)
    _, w = attn(q, k)
    e = torch.stack([attn.v(torch.tanh(attn.w_q(q[0]) + attn.w_k(k[0, s]))) for s in range(2)]).view(2)
    torch.testing.assert_close(w[0], torch.softmax(e, 0))


def test_errors():
    with pytest.raises(ValueError, match="dot attention needs query and key sizes to match"):
        LuongAttention(6, 4, "dot")
    with pytest.raises(ValueError, match="unknown attention 'cosine'"):
        make_attention("cosine", 4, 4)
    attn = LuongAttention(4, 4, "dot")
    with pytest.raises(ValueError, match="no valid position"):
        attn(torch.randn(1, 4), torch.randn(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be \(B, S\)"):
        attn(torch.randn(1, 4), torch.randn(1, 3, 4), torch.ones(1, 2, dtype=torch.bool))
    assert make_attention("none", 4, 4) is None
