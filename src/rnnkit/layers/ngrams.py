"""A bag of n-grams with naive-Bayes weights (Wang & Manning 2012): the classic strong baseline for short texts,
as a layer a recurrent classifier can add to its own scores.

Each text's distinct unigrams and (hashed) n-grams up to ``n`` vote for each class with the log-count ratio of
that n-gram in the training texts of the class against the others (binarised counts, add-one smoothing). With
``chars``, the character n-grams of its words vote too (fastText's subwords: ``" movie "`` gives ``" mo"``,
``"mov"``, ... ``"vie "``), so words that share a stem share evidence; words outside the vocabulary (unseen in
training, or below its limits) can keep their strings for the bag (:meth:`BagOfNgrams.unseen_ids`) while the
network reads them as ``<unk>``. The weights are counted, not trained
(:meth:`BagOfNgrams.fit`), so the bag neither overfits the training texts nor competes with the recurrent network
for the gradient; the classifier mixes the two with shares chosen on validation data.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..data.batching import pad_sequences

# odd multipliers for the n-gram hash (ids stay below 2^63 for vocabularies up to ~10^6 and n <= 3)
_PRIME = 1_000_003
#: at most this many character n-grams of one word (a 40-letter token would have ~120)
MAX_CHAR_NGRAMS = 48
#: held while a bag gives ids to unseen words (a server may encode texts in several threads; a module-level lock,
#: so that bags stay copyable)
_GROWING = threading.Lock()


@dataclass
class NgramConfig:
    """The n-gram bag.

    Attributes:
        n: longest n-gram (1: words only; 2: words and pairs of words; 3: and triples).
        buckets: hashed ids for the n-grams longer than one word (collisions share a weight).
        alpha: add-alpha smoothing of the counts.
        refit: once its share is chosen on the validation texts, count the bag again over the training and the
            validation texts (more texts, better ratios; the reported validation metrics stay those from before).
        chars: ``(shortest, longest)`` character n-grams of each word (the word framed by spaces) that vote
            beside the words, hashed into ``char_buckets`` ids; None: words only.
        unseen: with ``chars``, at most this many distinct words outside the vocabulary keep their character
            n-grams for the bag (ids after the vocabulary's, each word's n-grams computed once; the network and the
            word votes read them as ``<unk>``); 0: such words are ``<unk>`` for the bag too.
        linear: beside the counted votes, a logistic regression over the same n-grams, each present n-gram's
            feature its naive-Bayes ratio (NBSVM, Wang & Manning 2012; :func:`rnnkit.layers.ngram_linear.fit_linear`),
            with this inverse L2 strength ``C``; None: the counted votes only.
    """

    n: int = 2
    buckets: int = 1 << 20
    alpha: float = 1.0
    refit: bool = True
    chars: tuple[int, int] | None = (3, 5)
    char_buckets: int = 1 << 19
    unseen: int = 20_000
    linear: float | None = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 3:
            raise ValueError(f"NgramConfig: n must be 1, 2 or 3, got {self.n}")
        if self.buckets < 1 or not self.alpha > 0:
            raise ValueError(f"NgramConfig: buckets must be >= 1 and alpha > 0, got {self.buckets}, {self.alpha}")
        if self.linear is not None and not self.linear > 0:
            raise ValueError(f"NgramConfig: linear (C) must be > 0 or None, got {self.linear}")
        if self.unseen < 0:
            raise ValueError(f"NgramConfig: unseen must be >= 0, got {self.unseen}")
        if self.chars is not None and not (1 <= self.chars[0] <= self.chars[1] and self.char_buckets >= 1):
            raise ValueError(
                f"NgramConfig: chars must be (shortest, longest) with 1 <= shortest <= longest and char_buckets >= 1, "
                f"got {self.chars}, {self.char_buckets}"
            )


def char_ngrams(word: str, shortest: int, longest: int) -> list[str]:
    """The distinct character n-grams of `` word `` (framed by spaces), shortest first; a framed word shorter than
    an n-gram is that n-gram once."""
    framed, grams = f" {word} ", []
    for n in range(shortest, longest + 1):
        for i in range(max(len(framed) - n + 1, 1)):
            grams.append(framed[i : i + n])
    return list(dict.fromkeys(grams))


class BagOfNgrams(nn.Module):
    """``x (B, T)`` token ids with ``lengths (B,)`` -> ``(B, K)`` naive-Bayes scores of the distinct n-grams.

    Ids ``0..V-1`` are the words themselves (padding ``pad`` is never counted); longer n-grams hash into
    ``V..V+buckets-1`` and character n-grams into the ``char_buckets`` ids after those. The weights are a buffer set
    by :meth:`fit`; the character n-grams of each word id are a table built from the words (:meth:`set_words`),
    not saved (the vocabulary is). Token ids from ``V`` on are words outside the vocabulary
    (:meth:`unseen_ids`): ``unk`` for the word votes (and for the network: :meth:`known`), their own character
    n-grams for the character votes.
    """

    def __init__(self, vocab_size: int, num_classes: int, cfg: NgramConfig, pad: int = 0, unk: int = 1) -> None:
        super().__init__()
        self.cfg, self.vocab_size, self.num_classes, self.pad, self.unk = cfg, vocab_size, num_classes, pad, unk
        self.unseen: dict[str, int] = {}  # words outside the vocabulary -> their ids (V, V+1, ...)
        self.char_start = vocab_size + cfg.buckets  # the first character n-gram id
        size = self.char_start + (cfg.char_buckets if cfg.chars is not None else 0)
        self.register_buffer("weight", torch.zeros(size, num_classes))
        linear = cfg.linear is not None  # the logistic regression's weights and bias (NgramConfig.linear)
        self.register_buffer("linear", torch.zeros(size, num_classes) if linear else None)
        self.register_buffer("linear_bias", torch.zeros(num_classes) if linear else None)
        self.register_buffer("char_ids", torch.full((vocab_size, 0), -1, dtype=torch.long), persistent=False)

    def set_words(self, words: Sequence[str], specials: int = 0) -> None:
        """Build the table of each word id's character n-gram ids from the vocabulary's words (the first
        ``specials`` ids, e.g. ``<pad>``, have none). Without ``chars`` in the config: nothing."""
        if self.cfg.chars is None:
            return
        if len(words) != self.vocab_size:
            raise ValueError(f"BagOfNgrams: {len(words)} words for a vocabulary of {self.vocab_size}")
        self.unseen = {}
        self.char_ids = self._char_table([w if i >= specials else None for i, w in enumerate(words)])

    def _char_table(self, words: Sequence[str | None]) -> Tensor:
        """``(len(words), G)`` character n-gram ids of each word (None: none), -1 where a word has fewer."""
        lo, hi = self.cfg.chars  # type: ignore[misc]
        rows = [[] if w is None else char_ngrams(w, lo, hi)[:MAX_CHAR_NGRAMS] for w in words]
        width = max(1, self.char_ids.shape[1], max(map(len, rows), default=0))
        table = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, grams in enumerate(rows):  # crc32: the same ids in every process (str hashes are salted)
            ids = [zlib.crc32(g.encode("utf-8")) % self.cfg.char_buckets for g in grams]
            table[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return table.to(self.weight.device)

    def unseen_ids(self, words: Sequence[str]) -> list[int]:
        """Token ids for words outside the vocabulary: each distinct word gets the next id after the vocabulary's
        (and its character n-grams a row of the table) while ``cfg.unseen`` allows; otherwise (or without
        ``chars``) ``unk``. The same word keeps its id for the life of the bag (encoded texts stay valid)."""
        if self.cfg.chars is None or not self.char_ids.shape[1]:  # no character n-grams (or no table yet)
            return [self.unk] * len(words)
        with _GROWING:
            return self._unseen_ids(words)

    def _unseen_ids(self, words: Sequence[str]) -> list[int]:
        new = [w for w in dict.fromkeys(words) if w not in self.unseen][: max(self.cfg.unseen - len(self.unseen), 0)]
        if new:
            table = self._char_table(new)  # at least as wide as the table
            if table.shape[1] > self.char_ids.shape[1]:  # a word with more n-grams than any before: widen
                self.char_ids = nn.functional.pad(self.char_ids, (0, table.shape[1] - self.char_ids.shape[1]), value=-1)
            self.char_ids = torch.cat([self.char_ids, table])
            self.unseen.update({w: self.vocab_size + len(self.unseen) + i for i, w in enumerate(new)})
        return [self.unseen.get(w, self.unk) for w in words]

    def known(self, x: Tensor) -> Tensor:
        """``x (B, T)`` with the ids of words outside the vocabulary (:meth:`unseen_ids`) replaced by ``unk``."""
        return torch.where(x >= self.vocab_size, self.unk, x)

    def ids(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``(B, N)`` n-gram ids of each text, each distinct id once and the rest -1."""
        T = x.shape[1]
        full = x.long()
        x = self.known(full)  # words outside the vocabulary vote as <unk> (their characters below as themselves)
        valid = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        parts = [torch.where(valid & (x != self.pad), x, -1)]
        code = x
        for k in range(1, self.cfg.n):
            if k >= T:
                break
            code = code[:, :-1] * _PRIME + x[:, k:]  # (B, T-k): the n-gram starting at each step
            ok = valid[:, k:]
            parts.append(torch.where(ok, self.vocab_size + code.remainder(self.cfg.buckets), -1))
        if self.char_ids.shape[1]:  # the character n-grams of every valid word: (B, T, G) -> (B, T*G)
            grams = self.char_ids[full.clamp(0, self.char_ids.shape[0] - 1)]
            ok = (valid & (x != self.pad))[..., None] & (grams >= 0)
            parts.append(torch.where(ok, self.char_start + grams, -1).flatten(1))
        ids = torch.cat(parts, dim=1).sort(dim=1).values
        repeated = torch.zeros_like(ids, dtype=torch.bool)
        repeated[:, 1:] = ids[:, 1:] == ids[:, :-1]
        return ids.masked_fill(repeated, -1)

    def parts(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``(B, P, K)`` float64: the votes of the words and word n-grams, those of the character n-grams and (with
        ``linear``, P = 3) the logistic regression's scores."""
        ids = self.ids(x, lengths)
        present = (ids >= 0).to(self.weight.dtype)[..., None]
        votes = self.weight[ids.clamp(min=0)] * present  # (B, N, K)
        chars = (ids >= self.char_start)[..., None]
        # summed in float64: hundreds of votes, and every runtime (PyTorch, onnxruntime) then rounds the same sum
        words = votes.masked_fill(chars, 0.0).sum(1, dtype=torch.float64)
        parts = [words, votes.masked_fill(~chars, 0.0).sum(1, dtype=torch.float64)]
        if self.linear is not None:
            scores = (self.linear[ids.clamp(min=0)] * present).sum(1, dtype=torch.float64)
            parts.append(scores + self.linear_bias.to(torch.float64))
        return torch.stack(parts, 1)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.parts(x, lengths).sum(1).to(self.weight.dtype)  # (B, K)

    @torch.no_grad()
    def scale_(self, words: float, chars: float, linear: float = 1.0) -> None:
        """Multiply the weights of the words and word n-grams by ``words``, those of the character n-grams by
        ``chars`` and the logistic regression by ``linear`` (their shares relative to each other, chosen on
        validation data)."""
        self.weight[: self.char_start] *= words
        self.weight[self.char_start :] *= chars
        if self.linear is not None:
            self.linear *= linear
            self.linear_bias *= linear

    @torch.no_grad()
    def fit(self, texts: Sequence[Sequence[int]], labels: Sequence[int]) -> None:
        """Set the weights from tokenised training texts and their class ids: for class ``k``,
        ``log(p_k / |p_k|) - log(q_k / |q_k|)`` with ``p_k`` the (smoothed) number of class-``k`` texts that contain
        each n-gram and ``q_k`` the same over the other classes (words and character n-grams each normalised over
        their own ids)."""
        size = self.weight.shape[0]
        counts = torch.zeros(self.num_classes, size, dtype=torch.float64)
        for start, ids in self.text_ids(texts):
            y = torch.as_tensor(list(labels[start : start + len(ids)]), dtype=torch.long)[:, None].expand_as(ids)
            keep = ids >= 0
            counts.index_put_((y[keep], ids[keep]), torch.ones(int(keep.sum()), dtype=torch.float64), accumulate=True)
        ratio = torch.cat([self._ratio(c) for c in counts.split([self.char_start, size - self.char_start], 1)], 1)
        if self.num_classes == 2:
            ratio = ratio / 2  # the two one-vs-rest ratios are each other's negatives: split the vote
        self.weight.copy_(ratio.T.to(self.weight.dtype))

    def text_ids(self, texts: Sequence[Sequence[int]], chunk: int = 256) -> Iterator[tuple[int, Tensor]]:
        """``(start, ids (n, N))``: :meth:`ids` of tokenised texts, ``chunk`` texts at a time (on the CPU)."""
        for start in range(0, len(texts), chunk):
            # an empty text reads as one padding step (which no n-gram counts)
            x, lengths = pad_sequences([list(t) or [self.pad] for t in texts[start : start + chunk]], self.pad)
            yield start, self.ids(x.to(self.char_ids.device), lengths).cpu()

    def _ratio(self, counts: Tensor) -> Tensor:
        """``(K, n)`` log-count ratios of ``counts (K, n)`` (class k against the others)."""
        p = counts + self.cfg.alpha
        q = (counts.sum(0, keepdim=True) - counts) + self.cfg.alpha
        return torch.log(p / p.sum(1, keepdim=True)) - torch.log(q / q.sum(1, keepdim=True))
