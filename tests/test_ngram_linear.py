"""NBSVM's trained half: a logistic regression over the bag's n-grams scaled by their naive-Bayes ratios."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.layers.ngram_linear import fit_linear
from rnnkit.layers.ngrams import BagOfNgrams, NgramConfig


def _toy(n: int = 120, seed: int = 0) -> tuple[list[list[int]], list[int]]:
    """Texts of 4-7 words out of 30 (ids 4..33): words 4-9 lean positive, 10-15 negative, the rest are noise."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(2))
        cue = rng.choice(np.arange(4, 10) if y else np.arange(10, 16), 2)
        noise = rng.integers(4, 34, int(rng.integers(2, 6)))
        texts.append([int(i) for i in rng.permutation(np.concatenate([cue, noise]))])
        labels.append(y if rng.random() > 0.1 else 1 - y)  # 10% of the labels flipped: nothing is separable
    return texts, labels


def test_the_regression_is_logistic_regression_on_ratio_scaled_features():
    """Two classes: ``s_1 - s_0`` is a binary logistic regression on the features ``r_j`` (each present n-gram's
    ratio) with twice the ``C`` (the L2 penalty splits between the two columns), as scikit-learn fits it."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    texts, labels = _toy()
    bag = BagOfNgrams(34, 2, NgramConfig(n=2, buckets=97, chars=None, linear=0.5))
    bag.fit(texts, labels)
    fit_linear(bag, texts, labels, 0.5)
    ids = torch.cat([i for _, i in bag.text_ids(texts)])  # (n, N) distinct ids per text, -1 padding
    features = np.zeros((len(texts), bag.weight.shape[0]))
    for i, row in enumerate(ids.tolist()):
        for j in row:
            if j >= 0:
                features[i, j] = float(bag.weight[j, 1])
    ref = linear_model.LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(features, labels)
    x = torch.zeros(len(texts), max(map(len, texts)), dtype=torch.long)
    for i, t in enumerate(texts):
        x[i, : len(t)] = torch.tensor(t)
    scores = bag.parts(x, torch.tensor([len(t) for t in texts]))[:, 2]  # (n, 2): the regression's part
    np.testing.assert_allclose((scores[:, 1] - scores[:, 0]).numpy(), ref.decision_function(features), atol=2e-4)


def test_three_classes_the_fit_is_optimal_in_the_unpenalised_bias():
    """With K classes each class's column has its own ratio-scaled features; at the optimum the bias (not
    penalised) makes the predicted class totals equal the true ones, and the training texts are mostly right."""
    rng = np.random.default_rng(2)
    texts, labels = [], []
    for _ in range(240):
        y = int(rng.integers(3))
        cue = rng.choice(np.arange(4 + 6 * y, 10 + 6 * y), 2)
        texts.append([int(i) for i in np.concatenate([cue, rng.integers(4, 34, 3)])])
        labels.append(y)
    bag = BagOfNgrams(34, 3, NgramConfig(n=2, buckets=97, chars=None))
    bag.fit(texts, labels)
    fit_linear(bag, texts, labels, 1.0)
    x = torch.tensor(texts)
    p = torch.softmax(bag.parts(x, torch.full((len(texts),), 5))[:, 2], -1)
    y = torch.nn.functional.one_hot(torch.tensor(labels), 3).double()
    np.testing.assert_allclose(p.sum(0).numpy(), y.sum(0).numpy(), atol=1e-3)
    assert float((p.argmax(1) == torch.tensor(labels)).double().mean()) > 0.9
