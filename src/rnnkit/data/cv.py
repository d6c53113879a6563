"""Cross-validation splits that keep each class's share in every fold (scikit-learn's ``StratifiedKFold``), and the
validation part carved out of a fold's training part for model selection (never from its test part)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Fold:
    """Indices into the examples of one cross-validation fold: ``train`` and ``val`` (held out of the training
    part, for early stopping and model selection) and ``test`` (the fold's held-out part, for its score only)."""

    index: int
    train: list[int]
    val: list[int]
    test: list[int]


def _sklearn() -> tuple[type, type]:
    try:
        from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
    except ImportError:  # pragma: no cover - the extra is part of dev
        raise ImportError(
            "cross-validation needs scikit-learn: pip install 'rnnkit[cv]' (or pip install scikit-learn)"
        ) from None
    return StratifiedKFold, StratifiedShuffleSplit


def stratified_folds(labels: Sequence[object], k: int = 10, *, val_fraction: float = 0.1, seed: int = 0) -> list[Fold]:
    """``k`` folds over examples with these ``labels``: the test parts are disjoint, cover every example exactly
    once and keep the class balance; each fold's validation part is a stratified ``val_fraction`` of its
    training part."""
    labels = np.asarray([str(y) for y in labels])
    if k < 2:
        raise ValueError(f"cross-validation needs k >= 2 folds, got {k}")
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise ValueError(f"cross-validation of a classifier needs at least 2 classes, got {len(counts)}")
    if counts.min() < k:
        raise ValueError(f"the rarest class has {counts.min()} examples, fewer than the k={k} folds; lower k")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    kfold, shuffle_split = _sklearn()
    folds = []
    splitter = kfold(n_splits=k, shuffle=True, random_state=seed)
    for i, (rest, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        inner = shuffle_split(n_splits=1, test_size=val_fraction, random_state=seed + i)
        train, val = next(inner.split(np.zeros(len(rest)), labels[rest]))
        folds.append(Fold(i, sorted(rest[train].tolist()), sorted(rest[val].tolist()), sorted(test.tolist())))
    return folds
