"""Metrics: thin wrappers over seqeval (tagging), sacrebleu (translation) and numpy formulas (the rest)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np


# ---- forecasting ---------------------------------------------------------------------------------------------------
def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(pred))))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(pred)) ** 2)))


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(pred)) ** 2))


def smape(y: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric MAPE in percent: ``100 * mean(2 |y - ŷ| / (|y| + |ŷ|))`` (terms with y = ŷ = 0 count as 0)."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    denom = np.abs(y) + np.abs(pred)
    ratio = np.divide(2 * np.abs(y - pred), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * ratio.mean())


def mase(y: np.ndarray, pred: np.ndarray, insample: np.ndarray, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): MAE over the in-sample MAE of the seasonal naive
    forecast ``y_t = y_{t - season}``. Below 1 beats that naive forecast on average."""
    insample = np.asarray(insample, dtype=float)
    if len(insample) <= season:
        raise ValueError(f"MASE needs more than season={season} in-sample values, got {len(insample)}")
    scale = np.mean(np.abs(insample[season:] - insample[:-season]))
    return mae(y, pred) / scale if scale > 0 else float("inf")


def quantile_loss(y: np.ndarray, pred: np.ndarray, quantiles: Sequence[float]) -> float:
    """Mean pinball loss of quantile predictions ``pred (..., Q)`` for targets ``y (...)``."""
    err = np.asarray(y)[..., None] - np.asarray(pred)
    q = np.asarray(quantiles)
    return float(np.mean(np.maximum(q * err, (q - 1) * err)))


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last season: forecast step ``h`` (1-based) is ``history[-season + (h - 1) % season]``.

    ``history (..., T)`` -> ``(..., horizon)``; ``season=1`` is the repeat-last-value forecast.
    """
    history = np.asarray(history)
    if history.shape[-1] < season:
        raise ValueError(f"seasonal naive needs at least one season ({season}) of history, got {history.shape[-1]}")
    idx = history.shape[-1] - season + (np.arange(horizon) % season)
    return history[..., idx]


def forecast_metrics(y: np.ndarray, pred: np.ndarray, insample: np.ndarray, season: int) -> dict[str, float]:
    return {
        "mae": mae(y, pred),
        "rmse": rmse(y, pred),
        "mse": mse(y, pred),
        "smape": smape(y, pred),
        "mase": mase(y, pred, insample, season),
    }


# ---- classification ------------------------------------------------------------------------------------------------
def accuracy(y: Sequence, pred: Sequence) -> float:
    y, pred = np.asarray(y), np.asarray(pred)
    if len(y) == 0:
        raise ValueError("accuracy of an empty set")
    return float(np.mean(y == pred))


def macro_f1(y: Sequence, pred: Sequence) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y`` or ``pred``."""
    y, pred = np.asarray(y), np.asarray(pred)
    scores = []
    for c in np.union1d(y, pred):
        tp = np.sum((pred == c) & (y == c))
        fp, fn = np.sum((pred == c) & (y != c)), np.sum((pred != c) & (y == c))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    return float(np.mean(scores))


# ---- tagging -------------------------------------------------------------------------------------------------------
def entity_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (CoNLL style, via seqeval) and token accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    if [len(s) for s in gold] != [len(s) for s in pred]:
        raise ValueError("entity_scores: predicted and gold sentences differ in length")
    flat_gold = [t for s in gold for t in s]
    flat_pred = [t for s in pred for t in s]
    return {
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "token_accuracy": accuracy(flat_gold, flat_pred),
    }


def most_frequent_tags(
    train: Sequence[tuple[Sequence[str], Sequence[str]]], sentences: list[list[str]]
) -> list[list[str]]:
    """The simple tagging baseline: each word gets its most frequent tag in ``train`` (``(tokens, tags)`` pairs;
    ties go to the tag seen first), a word never seen in training gets the most frequent tag overall."""
    counts: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for tokens, tags in train:
        for word, tag in zip(tokens, tags, strict=True):
            counts[word][tag] += 1
        overall.update(tags)
    if not overall:
        raise ValueError("most_frequent_tags: no tagged training tokens")
    default = overall.most_common(1)[0][0]
    best = {w: c.most_common(1)[0][0] for w, c in counts.items()}
    return [[best.get(w, default) for w in s] for s in sentences]


# ---- translation ---------------------------------------------------------------------------------------------------
def bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU with sacrebleu's standard tokenisation (13a), on detokenised text."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"bleu: {len(hypotheses)} hypotheses but {len(references)} references")
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


# ---- language modelling --------------------------------------------------------------------------------------------
def lm_metrics(total_nats: float, tokens: int, characters: int) -> dict[str, float]:
    """Loss per token (nats), perplexity, and bits per character of the text the tokens cover."""
    loss = total_nats / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 700)), "bpc": total_nats / characters / math.log(2)}
