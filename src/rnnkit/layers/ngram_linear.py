"""NBSVM's half that is trained (Wang & Manning 2012): a logistic regression over the n-grams of a
:class:`~rnnkit.layers.ngrams.BagOfNgrams`, each present n-gram's feature its naive-Bayes log-count ratio.

The counted votes weigh every n-gram by its ratio alone; the regression learns how far to trust each (correlated
n-grams, such as a word and the pairs and character n-grams that contain it, share rather than repeat their
evidence). Scaling the features by the ratios makes the L2 penalty pull each weight towards the counted vote's
direction, which is what makes NBSVM stronger than either a plain regression or the counts on short texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .ngrams import BagOfNgrams


def fit_linear(bag: BagOfNgrams, texts: Sequence[Sequence[int]], labels: Sequence[int], c: float) -> None:
    """Set ``bag.linear (rows, K)`` and ``bag.linear_bias (K,)``: the minimiser of
    ``c * sum_i CE(s_i, y_i) + |w|^2 / 2`` with ``s_ik = b_k + sum over the n-grams j of text i of r_jk w_jk``
    (``r = bag.weight``, the counted ratios, so call this after :meth:`BagOfNgrams.fit` and before any scaling),
    by L-BFGS; the bag then keeps ``r * w`` (one gather per n-gram at inference, as the counted votes)."""
    rows, cols = [], []
    for start, ids in bag.text_ids(texts):
        keep = ids >= 0
        rows.append(torch.arange(start, start + len(ids))[:, None].expand_as(ids)[keep])
        cols.append(ids[keep])
    used, col = torch.unique(torch.cat(cols), return_inverse=True)  # only the n-grams the texts have get weights
    row = torch.cat(rows)
    ratio = bag.weight[used.to(bag.weight.device)].cpu().double()  # (U, K)
    y = torch.as_tensor(list(labels), dtype=torch.long)
    w = torch.zeros_like(ratio, requires_grad=True)
    b = torch.zeros(ratio.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, tolerance_grad=1e-6, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        opt.zero_grad()
        scores = torch.zeros(len(y), ratio.shape[1], dtype=torch.float64).index_add(0, row, (ratio * w)[col]) + b
        loss = c * nn.functional.cross_entropy(scores, y, reduction="sum") + 0.5 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(objective)
    with torch.no_grad():
        bag.linear.zero_()  # type: ignore[union-attr]
        bag.linear[used.to(bag.weight.device)] = (ratio * w).to(bag.weight)  # type: ignore[index]
        bag.linear_bias.copy_(b)  # type: ignore[union-attr]
