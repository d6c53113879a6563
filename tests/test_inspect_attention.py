"""Attention maps come from the model's own decoder: rows sum to 1, padding gets 0, the search saw the same."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rnnkit import EncoderDecoder, EncoderDecoderConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.errors import cli_style
from rnnkit.inspect import attention


@pytest.mark.parametrize("kind", ["general", "dot", "bahdanau"])
def test_attention_rows_sum_to_one_and_match_the_search(kind):
    cfg = EncoderDecoderConfig(
        src_vocab=20, tgt_vocab=15, embedding_dim=8, attention=kind,
        encoder=RNNConfig("gru", 4, bidirectional=True), decoder=RNNConfig("gru", 8),
    )  # fmt: skip
    model = EncoderDecoder(cfg).eval()
    src, lengths = torch.randint(4, 20, (2, 6)), torch.tensor([6, 4])
    hyps = model.translate(src, lengths, max_length=5)
    for b, (hyp,) in enumerate(hyps):
        tgt_in = torch.tensor([[cfg.bos, *hyp.tokens]])
        w = attention(model, src[b : b + 1, : int(lengths[b])], lengths[b : b + 1], tgt_in)
        assert w.shape == (1, len(hyp.tokens) + 1, int(lengths[b]))
        assert_close(w[0, : len(hyp.attention)], hyp.attention[:, : int(lengths[b])])
    w = attention(model, src, lengths, torch.randint(4, 15, (2, 3)))
    assert w.shape == (2, 3, 6)
    assert_close(w.sum(-1), torch.ones(2, 3))
    assert not w[1, :, 4:].any(), "padded source positions get no weight"


def test_attention_asked_of_a_model_without_it_names_the_fix():
    model = EncoderDecoder(EncoderDecoderConfig(src_vocab=9, tgt_vocab=9, embedding_dim=4, attention="none"))
    src = torch.randint(4, 9, (1, 3))
    with pytest.raises(ValueError, match="trained without attention.*attention='general'"):
        attention(model, src, None, src)
    with cli_style(), pytest.raises(ValueError, match="--attention general"):
        attention(model, src, None, src)
    with pytest.raises(ValueError, match="for translation models.*ManyToOne"):
        attention(ManyToOne(ManyToOneConfig()), src, None, src)  # type: ignore[arg-type]
