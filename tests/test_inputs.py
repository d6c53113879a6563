"""The input layer: word dropout, and token ids packed with casing and character columns."""

from __future__ import annotations

import pytest
import torch

from rnnkit.layers.char_features import CharConfig
from rnnkit.layers.inputs import InputConfig, SequenceInput


def test_word_dropout_replaces_words_by_unk_in_training_only():
    layer = SequenceInput(InputConfig(vocab_size=50, embedding_dim=4, word_dropout=0.3))
    x = torch.randint(2, 50, (64, 40))
    x[:, 30:] = 0  # padding
    unk = layer.embedding.weight[1].detach()
    layer.train()
    out = layer(x).detach()
    dropped = (out[:, :30] == unk).all(-1).float().mean()
    assert 0.25 < dropped < 0.35
    assert torch.equal(out[:, 30:], torch.zeros_like(out[:, 30:]))  # padding is never replaced
    layer.eval()
    assert torch.equal(layer(x), layer.embedding(x))
    with pytest.raises(ValueError, match=r"word_dropout must be in \[0, 1\)"):
        InputConfig(vocab_size=5, word_dropout=1.0)
    with pytest.raises(ValueError, match="need token input"):
        InputConfig(input_size=3, word_dropout=0.1)


def test_packed_input_concatenates_word_casing_and_character_features():
    cfg = InputConfig(
        vocab_size=20, embedding_dim=6, casing_classes=9, casing_dim=3, char=CharConfig(vocab_size=12, dim=4, size=8)
    )
    assert cfg.packed and cfg.output_size == 6 + 3 + 8
    layer = SequenceInput(cfg).eval()
    x = torch.randint(1, 9, (2, 5, 2 + 7))  # word id, casing, 7 characters
    out = layer(x)
    assert out.shape == (2, 5, 17)
    assert torch.equal(out[..., :6], layer.embedding(x[..., 0]))
    assert torch.equal(out[..., 6:9], layer.casing(x[..., 1]))
    assert torch.equal(layer.features(x), out)  # the traceable form (export) computes the same
    x[0, 1, 2:] = 0  # a padded step: no characters at all
    assert torch.allclose(layer.features(x), layer(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(B, T, F\) ints with F >= 3"):
        layer(x[..., 0])
    with pytest.raises(ValueError, match="casing classes must be in 0..8"):
        layer(torch.cat([x[..., :1], torch.full_like(x[..., 1:2], 9), x[..., 2:]], -1))
    with pytest.raises(ValueError, match="give both casing_classes and casing_dim"):
        InputConfig(vocab_size=5, casing_classes=9)
