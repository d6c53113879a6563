"""ManyToMany: tagging with and without a CRF, language-model generation, tied weights."""

from __future__ import annotations

import pytest
import torch

from rnnkit import HeadConfig, InputConfig, ManyToMany, ManyToManyConfig, RNNConfig, SamplingConfig, tbptt

CELLS = ["rnn_tanh", "lstm", "gru", "layernorm_lstm", "mingru", "minlstm"]


def tagger(cell="lstm", crf=False, bidirectional=True, hidden=16, tags=4):
    return ManyToMany(
        ManyToManyConfig(
            InputConfig(vocab_size=20, embedding_dim=16),
            RNNConfig(cell=cell, hidden_size=hidden, bidirectional=bidirectional),
            HeadConfig(num_classes=tags),
            crf=crf,
        )
    )


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("crf", [False, True])
def test_shapes_and_padding_invariance(cell, crf):
    m = tagger(cell, crf).eval()
    x, lengths = torch.randint(1, 20, (3, 6)), torch.tensor([6, 1, 4])
    out, state = m(x, lengths=lengths)
    assert out.shape == (3, 6, 4) and state[0].shape == (2, 3, 16)
    tags = torch.randint(0, 4, (3, 6))
    x2, tags2 = x.clone(), tags.clone()
    pad = torch.arange(6)[None, :] >= lengths[:, None]
    x2[pad], tags2[pad] = 0, 3
    out2, _ = m(x2, lengths=lengths)
    torch.testing.assert_close(out2[~pad], out[~pad], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.loss(out2, tags2, lengths), m.loss(out, tags, lengths), atol=1e-5, rtol=1e-5)
    decoded = m.decode(x, lengths)
    assert decoded.shape == (3, 6) and torch.all(decoded[pad] == 0)


def context_tagging(n, gen):
    """Tag 1 if the previous token is 4, tag 2 if the next token is 5, else 0: needs both sides of context."""
    x = torch.randint(4, 12, (n, 12), generator=gen)
    tags = torch.zeros_like(x)
    tags[:, 1:][x[:, :-1] == 4] = 1
    tags[:, :-1][(x[:, 1:] == 5) & (tags[:, :-1] == 0)] = 2
    return x, tags


def test_crf_tagger_learns_a_rule_that_needs_context():
    torch.manual_seed(0)
    m = tagger("gru", crf=True, hidden=32, tags=3)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        x, tags = context_tagging(32, gen)
        loss = m.loss(m(x)[0], tags)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, tags = context_tagging(200, torch.Generator().manual_seed(1))
    acc = (m.decode(x) == tags).float().mean().item()
    assert acc > 0.98, f"tag accuracy {acc:.3f}"


def lm(tie=False, cell="lstm"):
    return ManyToMany(
        ManyToManyConfig(
            InputConfig(vocab_size=12, embedding_dim=16),
            RNNConfig(cell=cell, hidden_size=24),
            HeadConfig(num_classes=12),
            tie_weights=tie,
        )
    )


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_language_model_generation_equals_teacher_forced_argmax(cell):
    m = lm(cell=cell).eval()
    prompt = torch.randint(4, 12, (2, 5))
    tokens, lengths = m.generate(prompt, 6, SamplingConfig(greedy=True))
    assert tokens.shape == (2, 6) and lengths.tolist() == [6, 6]
    full = torch.cat([prompt, tokens], 1)
    logits, _ = m(full)
    torch.testing.assert_close(logits[:, 4:-1].argmax(-1), tokens)


def test_variable_length_prompts_continue_from_their_own_end():
    m = lm().eval()
    prompt = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 4]])
    tokens, _ = m.generate(prompt, 3, SamplingConfig(greedy=True), lengths=torch.tensor([3, 5]))
    alone, _ = m.generate(prompt[:1, :3], 3, SamplingConfig(greedy=True))
    torch.testing.assert_close(tokens[:1], alone)


def test_sampling_is_reproducible_and_stops():
    m = lm().eval()
    prompt = torch.randint(4, 12, (3, 4))
    a = m.generate(
        prompt, 20, SamplingConfig(temperature=1.5), stop_token=3, generator=torch.Generator().manual_seed(0)
    )
    b = m.generate(
        prompt, 20, SamplingConfig(temperature=1.5), stop_token=3, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_tied_weights_share_the_embedding():
    m = lm(tie=True)
    assert m.head.net[-1].weight is m.input.embedding.weight
    assert m.proj is not None  # hidden 24 -> embedding 16
    with pytest.raises(ValueError, match="tie_weights needs num_classes == vocab_size"):
        ManyToManyConfig(InputConfig(vocab_size=12), head=HeadConfig(num_classes=5), tie_weights=True)


def test_runs_under_tbptt_with_carried_state():
    m = lm().eval()
    x = torch.randint(4, 12, (2, 20))
    whole, _ = m(x)
    chunks = list(tbptt(m, x, timestep=7))
    torch.testing.assert_close(torch.cat([c.output for c in chunks], 1), whole, atol=1e-5, rtol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="crf needs a classification head"):
        ManyToManyConfig(head=HeadConfig(kind="regression"), crf=True)
    with pytest.raises(ValueError, match="generation needs token input"):
        tagger().generate(torch.randint(1, 20, (1, 3)), 3)
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        lm().generate(torch.randint(4, 12, (1, 3)), 0)
    with pytest.raises(ValueError, match=r"target must start with \(B, T\)"):
        m = tagger()
        m.loss(m(torch.randint(1, 20, (2, 5)))[0], torch.zeros(2, 4, dtype=torch.long))
