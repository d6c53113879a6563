"""Metric formulas against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnkit.metrics import accuracy, bleu, entity_scores, lm_metrics, macro_f1, mase, seasonal_naive, smape


def test_seasonal_naive_repeats_the_last_season():
    history = np.array([1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(seasonal_naive(history, 5, 3), [5, 6, 7, 5, 6])
    np.testing.assert_array_equal(seasonal_naive(history, 2, 1), [7, 7])
    np.testing.assert_array_equal(seasonal_naive(np.stack([history, -history]), 2, 2)[1], [-6, -7])
    with pytest.raises(ValueError, match="at least one season"):
        seasonal_naive(history, 2, 12)


def test_mase_and_smape():
    insample = np.array([1.0, 3.0, 2.0, 4.0])  # seasonal (m=1) naive errors 2, 1, 2 -> scale 5/3
    assert mase(np.array([2.0]), np.array([3.0]), insample, 1) == pytest.approx(1 / (5 / 3))
    assert smape(np.array([100.0, 0.0]), np.array([110.0, 0.0])) == pytest.approx(100 * (20 / 210) / 2)


def test_classification_scores():
    y, p = [0, 0, 1, 1, 2], [0, 1, 1, 1, 0]
    assert accuracy(y, p) == 0.6
    f1 = [2 * 1 / (2 + 1 + 1), 2 * 2 / (4 + 1 + 0), 0.0]
    assert macro_f1(y, p) == pytest.approx(np.mean(f1))


def test_entity_scores_are_entity_level():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "O", "O", "B-LOC"]]  # the PER span is cut short: wrong entity
    s = entity_scores(gold, pred)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["token_accuracy"] == 0.75


def test_bleu_and_lm_metrics():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert bleu(["a dog"], ["the cat sat on the mat"]) < 5
    m = lm_metrics(total_nats=20 * math.log(4), tokens=20, characters=20)
    assert m["perplexity"] == pytest.approx(4.0) and m["bpc"] == pytest.approx(2.0)


def test_most_frequent_tags_uses_each_words_commonest_tag_and_the_commonest_tag_for_unseen_words():
    from rnnkit.metrics import most_frequent_tags

    train = [(["Paris", "is", "very", "big"], ["B-LOC", "O", "O", "O"]), (["Paris", "Hilton"], ["B-PER", "I-PER"])]
    train += [(["Paris"], ["B-LOC"])]
    assert most_frequent_tags(train, [["Paris", "Hilton", "is", "new"]]) == [["B-LOC", "I-PER", "O", "O"]]
    with pytest.raises(ValueError, match="no tagged training tokens"):
        most_frequent_tags([], [["a"]])
