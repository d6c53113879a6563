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
