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


def test_packed_word_dropout_drops_the_word_id_but_keeps_its_casing_and_spelling():
    """A dropped word reads as <unk>, as an unseen word does at test time: its casing and characters stay."""
    cfg = InputConfig(
        vocab_size=20,
        embedding_dim=6,
        word_dropout=0.5,
        casing_classes=9,
        casing_dim=3,
        char=CharConfig(vocab_size=12, dim=4, size=8),
    )
    layer = SequenceInput(cfg)
    layer.train()
    x = torch.randint(2, 9, (8, 10, 2 + 5))
    out = layer(x).detach()
    unk = layer.embedding.weight[1].detach()
    dropped = (out[..., :6] == unk).all(-1)
    assert 0.3 < dropped.float().mean() < 0.7
    assert torch.equal(out[..., 6:9], layer.casing(x[..., 1]).detach())  # casing never dropped
    layer.eval()
    assert torch.equal(out[..., 9:], layer(x)[..., 9:].detach())  # the characters' features untouched


def test_casing_sets_apart_words_the_lowercased_lookup_merges():
    """'Apple' and 'apple' share a word id (the lookup is lowercased); the casing feature keeps them apart."""
    from rnnkit.data.text import Vocab
    from rnnkit.data.word_features import WordEncoder, pad_words

    encoder = WordEncoder(Vocab.build([["apple", "pie"]]), lowercase=True, casing=True)
    x, _ = pad_words([encoder.encode(["Apple", "apple", "APPLE"])])  # (1, 3, 2): word id, casing class
    assert x[0, :, 0].unique().numel() == 1 and x[0, :, 1].unique().numel() == 3
    layer = SequenceInput(InputConfig(vocab_size=len(encoder.vocab), embedding_dim=4, casing_classes=9, casing_dim=2))
    out = layer.eval()(x)[0]
    assert torch.equal(out[0, :4], out[1, :4]) and torch.equal(out[1, :4], out[2, :4])  # one word embedding
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
    without = SequenceInput(InputConfig(vocab_size=len(encoder.vocab), embedding_dim=4)).eval()
    plain = without(x[..., 0])[0]
    assert torch.equal(plain[0], plain[1])  # without casing the three are one word
