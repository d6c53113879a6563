"""Stratified K-fold cross-validation with a validation part carved from each fold's training part."""

from __future__ import annotations

from collections import Counter

import pytest

from rnnkit.data.cv import stratified_folds


def test_folds_are_disjoint_cover_everything_once_and_keep_the_balance():
    labels = ["pos"] * 70 + ["neg"] * 30 + ["mid"] * 20
    folds = stratified_folds(labels, k=10, val_fraction=0.1, seed=3)
    assert len(folds) == 10
    tested = [i for f in folds for i in f.test]
    assert sorted(tested) == list(range(len(labels)))  # every example tested exactly once
    for f in folds:
        assert not set(f.train) & set(f.val) and not set(f.train) & set(f.test) and not set(f.val) & set(f.test)
        assert sorted(f.train + f.val + f.test) == list(range(len(labels)))
        assert Counter(labels[i] for i in f.test) == {"pos": 7, "neg": 3, "mid": 2}
        val = Counter(labels[i] for i in f.val)
        assert set(val) == {"pos", "neg", "mid"} and len(f.val) == 11  # a stratified tenth of the 108 left
    assert stratified_folds(labels, k=10, seed=3)[0].test == folds[0].test  # seeded
    assert stratified_folds(labels, k=10, seed=4)[0].test != folds[0].test


def test_bad_requests():
    with pytest.raises(ValueError, match="k >= 2"):
        stratified_folds(["a", "b"] * 5, k=1)
    with pytest.raises(ValueError, match="rarest class has 2 examples, fewer than the k=3 folds"):
        stratified_folds(["a"] * 10 + ["b"] * 2, k=3)
    with pytest.raises(ValueError, match="at least 2 classes"):
        stratified_folds(["a"] * 10, k=2)
