"""A bag of n-grams with naive-Bayes weights (Wang & Manning 2012): the classic strong baseline for short texts,
as a layer a recurrent classifier can add to its own scores.

Each text's distinct unigrams and (hashed) n-grams up to ``n`` vote for each class with the log-count ratio of
that n-gram in the training texts of the class against the others (binarised counts, add-one smoothing). The
weights are counted, not trained (:meth:`BagOfNgrams.fit`), so the bag neither overfits the training texts nor
competes with the recurrent network for the gradient; the classifier mixes the two with a weight chosen on
validation data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# odd multipliers for the n-gram hash (ids stay below 2^63 for vocabularies up to ~10^6 and n <= 3)
_PRIME = 1_000_003


@dataclass
class NgramConfig:
    """The n-gram bag.

    Attributes:
        n: longest n-gram (1: words only; 2: words and pairs of words; 3: and triples).
        buckets: hashed ids for the n-grams longer than one word (collisions share a weight).
        alpha: add-alpha smoothing of the counts.
        refit: once its share is chosen on the validation texts, count the bag again over the training and the
            validation texts (more texts, better ratios; the reported validation metrics stay those from before).
    """

    n: int = 2
    buckets: int = 1 << 20
    alpha: float = 1.0
    refit: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 3:
            raise ValueError(f"NgramConfig: n must be 1, 2 or 3, got {self.n}")
        if self.buckets < 1 or not self.alpha > 0:
            raise ValueError(f"NgramConfig: buckets must be >= 1 and alpha > 0, got {self.buckets}, {self.alpha}")


class BagOfNgrams(nn.Module):
    """``x (B, T)`` token ids with ``lengths (B,)`` -> ``(B, K)`` naive-Bayes scores of the distinct n-grams.

    Ids ``0..V-1`` are the words themselves (padding ``pad`` is never counted); longer n-grams hash into
    ``V..V+buckets-1``. The weights are a buffer set by :meth:`fit`.
    """

    def __init__(self, vocab_size: int, num_classes: int, cfg: NgramConfig, pad: int = 0) -> None:
        super().__init__()
        self.cfg, self.vocab_size, self.num_classes, self.pad = cfg, vocab_size, num_classes, pad
        self.register_buffer("weight", torch.zeros(vocab_size + cfg.buckets, num_classes))

    def ids(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``(B, N)`` n-gram ids of each text, each distinct id once and the rest -1."""
        T = x.shape[1]
        x = x.long()
        valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        parts = [torch.where(valid & (x != self.pad), x, -1)]
        code = x
        for k in range(1, self.cfg.n):
            if k >= T:
                break
            code = code[:, :-1] * _PRIME + x[:, k:]  # (B, T-k): the n-gram starting at each step
            ok = valid[:, k:]
            parts.append(torch.where(ok, self.vocab_size + code.remainder(self.cfg.buckets), -1))
        ids = torch.cat(parts, dim=1).sort(dim=1).values
        repeated = torch.zeros_like(ids, dtype=torch.bool)
        repeated[:, 1:] = ids[:, 1:] == ids[:, :-1]
        return ids.masked_fill(repeated, -1)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        ids = self.ids(x, lengths)
        present = (ids >= 0).to(self.weight.dtype)
        votes = self.weight[ids.clamp(min=0)] * present[..., None]  # (B, N, K)
        # summed in float64: hundreds of votes, and every runtime (PyTorch, onnxruntime) then rounds the same sum
        return votes.sum(1, dtype=torch.float64).to(self.weight.dtype)  # (B, K)

    @torch.no_grad()
    def fit(self, texts: Sequence[Sequence[int]], labels: Sequence[int]) -> None:
        """Set the weights from tokenised training texts and their class ids: for class ``k``,
        ``log(p_k / |p_k|) - log(q_k / |q_k|)`` with ``p_k`` the (smoothed) number of class-``k`` texts that contain
        each n-gram and ``q_k`` the same over the other classes."""
        size = self.vocab_size + self.cfg.buckets
        counts = torch.zeros(self.num_classes, size, dtype=torch.float64)
        for start in range(0, len(texts), 256):
            chunk = texts[start : start + 256]
            lengths = torch.tensor([max(len(t), 1) for t in chunk])
            x = torch.full((len(chunk), int(lengths.max())), self.pad, dtype=torch.long)
            for i, t in enumerate(chunk):
                x[i, : len(t)] = torch.as_tensor(list(t), dtype=torch.long)
            ids = self.ids(x, lengths)
            y = torch.as_tensor(list(labels[start : start + 256]), dtype=torch.long)[:, None].expand_as(ids)
            keep = ids >= 0
            counts.index_put_((y[keep], ids[keep]), torch.ones(int(keep.sum()), dtype=torch.float64), accumulate=True)
        total = counts.sum(0, keepdim=True)
        p = counts + self.cfg.alpha
        q = (total - counts) + self.cfg.alpha
        ratio = torch.log(p / p.sum(1, keepdim=True)) - torch.log(q / q.sum(1, keepdim=True))  # (K, size)
        if self.num_classes == 2:
            ratio = ratio / 2  # the two one-vs-rest ratios are each other's negatives: split the vote
        self.weight.copy_(ratio.T.to(self.weight.dtype))
