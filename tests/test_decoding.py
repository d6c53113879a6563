"""Sampling and search: top-k/top-p filtering, temperature, reproducibility, greedy vs beam on a known model."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.decoding import (
    SamplingConfig,
    beam_search,
    filter_logits,
    greedy_search,
    length_penalty,
    sample_next,
    sample_sequence,
)

BOS, EOS, A, B = 0, 1, 2, 3
# A Markov "model" over 4 tokens; the state is the previous token. Greedy takes A first (0.6) and then has no good
# continuation; B first (0.4) then EOS (0.95) is the most likely sequence.
TABLE = torch.tensor(
    [
        [0.0, 0.0, 0.6, 0.4],  # after BOS
        [0.25, 0.25, 0.25, 0.25],  # after EOS (never used)
        [0.0, 0.3, 0.35, 0.35],  # after A
        [0.0, 0.95, 0.03, 0.02],  # after B
    ]
)


def markov_step(tokens, state):
    return torch.log(TABLE[tokens].clamp_min(1e-12)), tokens, None


def markov_select(state, index):
    return state.index_select(0, index)


def log_prob(seq, finished=True):
    prev, total = BOS, 0.0
    for tok in seq + ([EOS] if finished else []):
        total += math.log(max(float(TABLE[prev, tok]), 1e-12))
        prev = tok
    return total


def test_top_k_never_leaves_the_top_k():
    logits = torch.randn(4, 50)
    top3 = logits.topk(3, dim=-1).indices
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        tok = sample_next(logits, SamplingConfig(top_k=3), gen)
        assert all(int(t) in top3[i].tolist() for i, t in enumerate(tok))


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = filter_logits(probs.log(), top_p=0.75)
    assert torch.isfinite(kept).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(probs.log(), top_p=0.4)).tolist() == [[True, False, False, False]]


def test_temperature_towards_zero_is_greedy_and_seed_reproduces():
    logits = torch.randn(16, 30)
    cold = sample_next(logits, SamplingConfig(temperature=1e-4), torch.Generator().manual_seed(1))
    assert torch.equal(cold, logits.argmax(-1))
    assert torch.equal(sample_next(logits, SamplingConfig(temperature=0.0)), logits.argmax(-1))
    a = sample_next(logits, SamplingConfig(), torch.Generator().manual_seed(7))
    b = sample_next(logits, SamplingConfig(), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_sample_sequence_stops_and_pads():
    tokens, lengths = sample_sequence(
        markov_step, None, torch.tensor([BOS, BOS]), 6, SamplingConfig(greedy=True), stop_token=EOS, pad_token=9
    )
    assert lengths.tolist() == [6, 6]
    tokens, lengths = sample_sequence(
        markov_step, None, torch.tensor([B, A]), 6, SamplingConfig(greedy=True), stop_token=EOS, pad_token=9
    )
    assert tokens[0].tolist()[:1] == [EOS] and lengths[0] == 1
    assert torch.all(tokens[0, 1:] == 9)


def test_beam_of_one_equals_greedy():
    greedy = greedy_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, max_length=8)[0]
    beam = beam_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, beam_size=1, max_length=8)[0][0]
    assert beam.tokens == greedy.tokens
    assert beam.log_prob == pytest.approx(greedy.log_prob, abs=1e-5)


def test_beam_finds_a_more_likely_sequence_than_greedy():
    greedy = greedy_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, max_length=8)[0]
    best = beam_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, beam_size=3, max_length=8)[0][0]
    assert best.tokens == [B] and best.finished
    assert best.log_prob > greedy.log_prob + 0.5


def test_returned_scores_equal_rescoring_and_are_sorted():
    hyps = beam_search(
        markov_step,
        markov_select,
        torch.tensor([BOS, BOS]),
        2,
        BOS,
        EOS,
        beam_size=4,
        max_length=5,
        alpha=0.6,
        n_best=4,
    )
    for per_input in hyps:
        assert len(per_input) == 4
        assert [h.score for h in per_input] == sorted((h.score for h in per_input), reverse=True)
        for h in per_input:
            assert h.log_prob == pytest.approx(log_prob(h.tokens, h.finished), abs=1e-4)
            n = len(h.tokens) + (1 if h.finished else 0)
            assert h.score == pytest.approx(h.log_prob / length_penalty(n, 0.6), abs=1e-4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="beam_size must be >= 1"):
        beam_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, beam_size=0)
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        beam_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, max_length=0)
    with pytest.raises(ValueError, match="n_best must be in 1..beam_size"):
        beam_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        greedy_search(markov_step, markov_select, torch.tensor([BOS]), 1, BOS, EOS, max_length=0)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        SamplingConfig(top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)


def _same_hypotheses(got, expect, exact=True):
    assert len(got) == len(expect)
    for g, e in zip(got, expect):
        assert (g.tokens, g.finished) == (e.tokens, e.finished)
        if exact:
            assert (g.log_prob, g.score) == (e.log_prob, e.score)
        else:
            assert (g.log_prob, g.score) == (pytest.approx(e.log_prob, abs=1e-5), pytest.approx(e.score, abs=1e-5))
        if e.attention is None:
            assert g.attention is None
        elif exact:
            assert torch.equal(g.attention, e.attention)
        else:
            torch.testing.assert_close(g.attention, e.attention, atol=1e-6, rtol=1e-5)


def _random_model(seed, V, S, peaked, inputs=3):
    """A random autoregressive model with attention: logits from (previous token, a hidden state), the state mixed
    by the token; ``peaked`` makes a few continuations dominate (many end tokens, early finishes)."""
    gen = torch.Generator().manual_seed(seed)
    emb, mix = torch.randn(V, 8, generator=gen), torch.randn(8, 8, generator=gen) / 3
    out, keys = torch.randn(8, V, generator=gen) * (4.0 if peaked else 1.0), torch.randn(8, S, generator=gen)

    def step(tokens, state):
        h = torch.tanh(state @ mix + emb[tokens])
        return h @ out, h, torch.softmax(h @ keys, -1)

    return step, lambda state, index: state.index_select(0, index), torch.randn(inputs, 8, generator=gen)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("inputs", [3, 9])  # 9 inputs: finished ones leave the batch
@pytest.mark.parametrize(("beam", "n_best", "alpha", "max_length"), [(1, 1, 0.0, 7), (3, 2, 0.6, 9), (5, 5, 1.0, 4)])
def test_batched_search_equals_the_reference_loop(seed, inputs, beam, n_best, alpha, max_length):
    """Tokens, log-probabilities, scores, finished flags and attention rows: identical to the search before the
    batching (tests/_decoding_reference.py), with inputs finishing at different steps and some never."""
    from _decoding_reference import reference_beam_search, reference_greedy_search

    step, select, state = _random_model(seed, V=6, S=5, peaked=seed % 2 == 0, inputs=inputs)
    args = (step, select, state, inputs, BOS, EOS)
    kw = {"beam_size": beam, "max_length": max_length, "alpha": alpha, "n_best": n_best}
    expect = reference_beam_search(*args, **kw)
    for compact in (False, True):  # finished inputs leaving the batch may move the model's numbers in the last bit
        for g, e in zip(beam_search(*args, **kw, compact=compact), expect):
            _same_hypotheses(g, e, exact=not compact)
    expect = reference_greedy_search(*args, max_length=max_length)
    for compact in (False, True):
        _same_hypotheses(greedy_search(*args, max_length=max_length, compact=compact), expect, exact=not compact)


@pytest.mark.parametrize("attention", ["general", "bahdanau", "none"])
def test_batched_search_equals_the_reference_on_an_encoder_decoder(attention):
    from _decoding_reference import reference_beam_search
    from rnnkit import EncoderDecoder, EncoderDecoderConfig, RNNConfig

    torch.manual_seed(5)
    m = EncoderDecoder(
        EncoderDecoderConfig(
            src_vocab=12,
            tgt_vocab=12,
            embedding_dim=8,
            encoder=RNNConfig(cell="gru", hidden_size=8, bidirectional=True),
            decoder=RNNConfig(cell="gru", hidden_size=8),
            attention=attention,
        )
    ).eval()
    src, lengths = torch.randint(4, 12, (5, 6)), torch.tensor([6, 2, 4, 1, 5])
    with torch.no_grad():
        got = m.translate(src, lengths, beam_size=4, max_length=8, alpha=0.6, n_best=3)
        args = (m.decode_step, m.select_state, m.encode(src, lengths), 5, 2, 3)
        expect = reference_beam_search(*args, beam_size=4, max_length=8, alpha=0.6, n_best=3)
    for g, e in zip(got, expect):  # beams share their input's memory now: attention rounds differently
        _same_hypotheses(g, e, exact=False)


# Length normalisation: ending at once (0.5) is more likely than A B <eos> (0.5 * 0.95 * 0.95 = 0.45), but per
# token the longer translation is the better one: only the length penalty lets the search prefer it. (A fifth
# token C keeps a second beam alive, so no unlikely ending fills the beam before A B <eos> is found.)
C = 4
SHORT_OR_LONG = torch.tensor(
    [
        [0.0, 0.5, 0.5, 0.0, 0.0],  # after BOS: <eos> or A
        [0.2, 0.2, 0.2, 0.2, 0.2],  # after EOS (never used)
        [0.0, 0.01, 0.0, 0.95, 0.04],  # after A: B
        [0.0, 0.95, 0.0, 0.0, 0.05],  # after B: <eos>
        [0.0, 0.5, 0.0, 0.0, 0.5],  # after C
    ]
)


def test_length_normalisation_lets_a_longer_translation_win():
    def step(tokens, state):
        return torch.log(SHORT_OR_LONG[tokens].clamp_min(1e-12)), tokens, None

    assert length_penalty(1, 0.6) == 1.0 and length_penalty(7, 1.0) == 2.0  # ((5 + n) / 6) ** alpha, GNMT
    start = torch.tensor([BOS])
    best = {
        a: beam_search(step, markov_select, start, 1, BOS, EOS, beam_size=2, max_length=6, alpha=a) for a in (0, 0.6)
    }
    assert best[0][0][0].tokens == []  # raw log-probability: the empty translation (log 0.5 > log 0.45)
    hyp = best[0.6][0][0]  # normalised (translate's default alpha): log 0.45 / ((5 + 3) / 6) ** 0.6 > log 0.5 / 1
    assert hyp.tokens == [A, B] and hyp.finished
    assert hyp.log_prob == pytest.approx(math.log(0.5 * 0.95 * 0.95), abs=1e-5)
    assert hyp.score == pytest.approx(hyp.log_prob / (8 / 6) ** 0.6, abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("beam", "n_best", "alpha"), [(3, 1, 0.6), (4, 2, 1.0), (4, 1, -0.5)])
def test_early_stop_and_per_input_lengths_return_the_same_hypotheses(seed, beam, n_best, alpha):
    """Stopping an input once no live beam can beat its n_best-th finished hypothesis returns exactly what the
    full search returns (its n_best), on inputs finishing at very different steps; a max_length per input gives
    each input the search it has alone with its own max_length; compaction (rows leaving, the first step on one
    row per input) keeps tokens and flags, numbers to 1e-5."""
    step, select, state = _random_model(seed, V=6, S=5, peaked=seed % 2 == 0, inputs=9)
    caps = [2, 9, 4, 12, 1, 7, 12, 3, 10]
    kw = {"beam_size": beam, "alpha": alpha, "n_best": n_best}
    for compact in (False, True):
        full = beam_search(step, select, state, 9, BOS, EOS, max_length=12, early_stop=False, compact=compact, **kw)
        early = beam_search(step, select, state, 9, BOS, EOS, max_length=12, compact=compact, **kw)
        for g, e in zip(early, full):
            _same_hypotheses(g, e, exact=not compact)
        per_input = beam_search(step, select, state, 9, BOS, EOS, max_length=caps, compact=compact, **kw)
        for b, got in enumerate(per_input):
            alone = beam_search(
                step, select, state[b : b + 1], 1, BOS, EOS, max_length=caps[b], early_stop=False, compact=False, **kw
            )[0]
            _same_hypotheses(got, alone, exact=False)  # a batch of 1 rounds its products differently
    with pytest.raises(ValueError, match="one per input"):
        beam_search(step, select, state, 9, BOS, EOS, max_length=[3, 4])


def test_early_stop_searches_fewer_rows():
    step, select, state = _random_model(0, V=6, S=5, peaked=True, inputs=9)
    rows = {}
    for early in (False, True):
        seen = []

        def counted(tokens, st, seen=seen):
            seen.append(tokens.shape[0])
            return step(tokens, st)

        beam_search(counted, select, state, 9, BOS, EOS, beam_size=4, max_length=30, alpha=0.6, early_stop=early)
        rows[early] = sum(seen)
    assert rows[True] < rows[False]
