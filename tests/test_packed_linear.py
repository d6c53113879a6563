"""Packed oneDNN products for inference: equal to nn.Linear to float32 rounding, the same whatever the row count,
repacked when the weight changes, and plain nn.Linear wherever a gradient is needed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit.layers import packed_linear as pl


def _layer(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(64, 300)


def test_equals_linear_and_does_not_depend_on_the_rows():
    layer, x = _layer(), torch.randn(40, 64)
    with torch.no_grad():
        full = pl.packed_linear(layer, x)
        torch.testing.assert_close(full, layer(x), atol=1e-5, rtol=1e-5)
        for rows in (8, 13, 33):  # beam search: finished inputs leave, the rest must not change
            assert torch.equal(pl.packed_linear(layer, x[:rows]), full[:rows])


def test_repacks_when_the_weight_changes():
    layer, x = _layer(), torch.randn(8, 64)
    with torch.no_grad():
        before = pl.packed_linear(layer, x)
        layer.weight.mul_(2.0)  # an optimiser step or load_state_dict: in place, the version moves
        torch.testing.assert_close(pl.packed_linear(layer, x), layer(x), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(pl.packed_linear(layer, x), before)


def test_gradients_and_other_dtypes_use_the_plain_layer():
    layer, x = _layer(), torch.randn(8, 64)
    out = pl.packed_linear(layer, x)  # gradients on: exactly nn.Linear, differentiable
    assert out.requires_grad and torch.equal(out, layer(x))
    with torch.no_grad():
        double = layer.double()
        assert torch.equal(pl.packed_linear(double, x.double()), double(x.double()))


@pytest.mark.parametrize("enabled", [True, False])
def test_encoder_decoder_translations_do_not_depend_on_packing(monkeypatch, enabled):
    from rnnkit import EncoderDecoder, EncoderDecoderConfig, RNNConfig

    torch.manual_seed(3)
    m = EncoderDecoder(
        EncoderDecoderConfig(
            src_vocab=20,
            tgt_vocab=30,
            embedding_dim=16,
            encoder=RNNConfig(cell="gru", hidden_size=16, bidirectional=True),
            decoder=RNNConfig(cell="gru", hidden_size=16),
        )
    ).eval()
    src, lengths = torch.randint(4, 20, (6, 7)), torch.tensor([7, 2, 5, 1, 6, 3])
    monkeypatch.setattr(pl, "ENABLED", False)
    expect = m.translate(src, lengths, beam_size=4, max_length=9, alpha=0.6)
    monkeypatch.setattr(pl, "ENABLED", enabled)
    got = m.translate(src, lengths, beam_size=4, max_length=9, alpha=0.6)
    for g, e in zip(got, expect):
        assert g[0].tokens == e[0].tokens
        assert g[0].log_prob == pytest.approx(e[0].log_prob, abs=1e-4)
