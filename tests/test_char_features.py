"""Character features: shapes, padding, and what they are for (an unseen word is represented by its spelling)."""

from __future__ import annotations

import pytest
import torch

from rnnkit.data.text import Vocab
from rnnkit.data.word_features import CharVocab, WordEncoder, pad_words
from rnnkit.layers.char_features import CharConfig, CharEncoder
from rnnkit.layers.inputs import InputConfig, SequenceInput


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_shapes_and_padded_words_give_zeros(kind):
    enc = CharEncoder(CharConfig(kind=kind, vocab_size=10, dim=4, size=6))
    chars = torch.tensor([[2, 3, 4, 0], [5, 0, 0, 0], [0, 0, 0, 0]])
    out = enc(chars)
    assert out.shape == (3, 6)
    assert torch.equal(out[2], torch.zeros(6)) and out[:2].abs().sum() > 0
    # a word's vector does not depend on the padding around it or on the other words
    assert torch.allclose(enc(chars[1:2, :1]), out[1:2], atol=1e-6)
    if kind == "cnn":  # the traceable form (export) computes the same, whatever the padding row and input hold
        with torch.no_grad():
            enc.embedding.weight[0] = 1.0
        holes = torch.tensor([[0, 0, 0, 7], [2, 0, 3, 0], [0, 0, 0, 0]])
        assert torch.allclose(enc.eval().dense(holes), enc(holes), atol=1e-6)
        assert torch.allclose(enc.dense(chars), enc(chars), atol=1e-6)
    else:
        with pytest.raises(ValueError, match="only the char CNN has a traceable form"):
            enc.dense(chars)


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_an_unknown_word_with_known_characters_gets_its_own_representation(kind):
    """Both words are unknown to the word vocabulary (the same <unk> id), yet their characters set them apart."""
    words = ["Paris", "London", "the"]
    encoder = WordEncoder(Vocab.build([words]), chars=CharVocab.build(words), casing=False)
    x, _ = pad_words([encoder.encode(["Sanders", "Lorna"])])  # (1, 2, F)
    assert x[0, 0, 0] == x[0, 1, 0] == Vocab.unk
    cfg = InputConfig(vocab_size=len(encoder.vocab), embedding_dim=5, char=CharConfig(kind, len(encoder.chars), 4, 6))
    layer = SequenceInput(cfg).eval()
    out = layer(x)
    assert out.shape == (1, 2, 5 + 6)
    assert torch.equal(out[0, 0, :5], out[0, 1, :5])  # the same word embedding (<unk>)
    assert not torch.allclose(out[0, 0, 5:], out[0, 1, 5:])  # different spellings, different features


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="not one of"):
        CharConfig(kind="rnn")
    with pytest.raises(ValueError, match="even size"):
        CharConfig(kind="lstm", size=5)
    with pytest.raises(ValueError, match=r"expected character ids \(N, C\)"):
        CharEncoder(CharConfig(vocab_size=5))(torch.zeros(2, 3, 4, dtype=torch.long))
