"""Turning a step-by-step token model into sequences: sampling (temperature, top-k, top-p), greedy and beam search.

Models plug in through two functions:

* ``step(tokens (N,), state) -> (logits (N, V), state, attention (N, S) or None)``: advance by one token;
* ``select(state, index (M,)) -> state``: keep/reorder/duplicate batch entries of a state.

One-to-many models, language models and encoder-decoders all expose these (``decode_step``, ``select_state``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from .errors import option

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any, "Tensor | None"]]
SelectFn = Callable[[Any, Tensor], Any]


@dataclass
class SamplingConfig:
    """How the next token is drawn from the model's logits.

    Attributes:
        temperature: logits are divided by this; 0 means greedy (argmax). Lower is more conservative.
        top_k: sample only among the k most likely tokens.
        top_p: nucleus sampling: only among the smallest set of tokens whose probability reaches p.
        greedy: always take the most likely token (same as temperature 0).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig: {option('temperature')} must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"SamplingConfig: {option('top_k')} must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingConfig: {option('top_p')} must be in (0, 1], got {self.top_p}")


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set every logit outside the top-k / the top-p nucleus to -inf. ``logits (N, V)``."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens before it already reach top_p (the most likely always stays)
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(logits: Tensor, cfg: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits (N, V)``: ``(N,)`` int64."""
    if cfg.greedy or cfg.temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits / cfg.temperature, cfg.top_k, cfg.top_p)
    probs = logits.float().softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def sample_sequence(
    step: StepFn,
    state: Any,
    first: Tensor,
    max_length: int,
    sampling: SamplingConfig,
    stop_token: int | None = None,
    pad_token: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Feed ``first (N,)`` and keep feeding back drawn tokens.

    Returns ``tokens (N, L)`` (L <= max_length; pad after each row's stop token, which is kept) and ``lengths (N,)``
    counting the stop token.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    N = first.shape[0]
    tokens, out = first, []
    done = torch.zeros(N, dtype=torch.bool, device=first.device)
    lengths = torch.full((N,), max_length, dtype=torch.long, device=first.device)
    for t in range(max_length):
        logits, state, _ = step(tokens, state)
        drawn = sample_next(logits, sampling, generator)
        nxt = drawn.masked_fill(done, pad_token)
        out.append(nxt)
        if stop_token is not None:
            newly = (nxt == stop_token) & ~done
            lengths[newly] = t + 1
            done |= newly
            if bool(done.all()):
                break
        tokens = drawn  # finished rows keep running on real tokens; their output is padding
    return torch.stack(out, 1), lengths


@dataclass
class Hypothesis:
    """A decoded sequence.

    Attributes:
        tokens: the tokens, without the end token.
        log_prob: sum of the model's log-probabilities of ``tokens`` (plus the end token, if ``finished``).
        score: ``log_prob`` divided by the length penalty (what the search ranks by).
        finished: ended with the end token (else it hit ``max_length``).
        attention: ``(len, S)`` attention weights of each generated step (if the model attends), else None.
    """

    tokens: list[int]
    log_prob: float
    score: float
    finished: bool
    attention: Tensor | None = field(default=None, repr=False)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016); alpha 0 ranks by raw log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


def beam_search(
    step: StepFn,
    select: SelectFn,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    beam_size: int = 4,
    max_length: int = 100,
    alpha: float = 0.0,
    n_best: int = 1,
) -> list[list[Hypothesis]]:
    """Beam search from ``state`` (batch ``batch_size``) starting with token ``bos``.

    Keeps the ``beam_size`` best partial sequences per input; a sequence ends at ``eos`` or at ``max_length``.
    An input is done once it has ``beam_size`` finished hypotheses. Returns, per input, the ``n_best``
    hypotheses by ``score`` (log-probability / length penalty with exponent ``alpha``), best first.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in 1..beam_size ({beam_size}), got {n_best}")
    B, K = batch_size, beam_size
    device = _device_of(state)
    state = select(state, torch.arange(B, device=device).repeat_interleave(K))
    tokens = torch.full((B * K,), bos, dtype=torch.long, device=device)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one
    history: list[list[list[int]]] = [[[] for _ in range(K)] for _ in range(B)]
    attn_hist: list[list[list[Tensor]]] = [[[] for _ in range(K)] for _ in range(B)]
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = [False] * B

    def hyp(b: int, k: int, toks: list[int], atts: list[Tensor], logp: float, ended: bool) -> Hypothesis:
        length = len(toks) + (1 if ended else 0)
        att = torch.stack(atts) if atts else None
        return Hypothesis(toks, logp, logp / length_penalty(length, alpha), ended, att)

    for _ in range(max_length):
        logits, state, attn = step(tokens, state)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        V = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(B, K * V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=1)
        new_src, new_tok, new_scores = [], [], []
        for b in range(B):
            keep_src, keep_tok, keep_sc = [], [], []
            if not done[b]:
                for sc, idx in zip(top_scores[b].tolist(), top_idx[b].tolist()):
                    if sc == float("-inf") or len(keep_src) == K:
                        break
                    k, tok = divmod(idx, V)
                    atts = attn_hist[b][k] + ([attn[b * K + k].detach()] if attn is not None else [])
                    if tok == eos:
                        if len(finished[b]) < K:
                            finished[b].append(hyp(b, k, history[b][k], atts, sc, True))
                        continue
                    keep_src.append(k)
                    keep_tok.append(tok)
                    keep_sc.append(sc)
                if len(finished[b]) >= K:
                    done[b] = True
            while len(keep_src) < K:  # pad dead beams (done inputs, or fewer live candidates)
                keep_src.append(0)
                keep_tok.append(eos)
                keep_sc.append(float("-inf"))
            new_src.append(keep_src)
            new_tok.append(keep_tok)
            new_scores.append(keep_sc)
        src = torch.tensor(new_src, device=device)  # (B, K) source beam of each new beam
        for b in range(B):
            history[b] = [history[b][k] + [tok] for k, tok in zip(new_src[b], new_tok[b])]
            if attn is not None:
                attn_hist[b] = [attn_hist[b][k] + [attn[b * K + k].detach()] for k in new_src[b]]
        scores = torch.tensor(new_scores, device=device)
        if all(done):
            break
        flat = (torch.arange(B, device=device)[:, None] * K + src).view(-1)
        state = select(state, flat)
        tokens = torch.tensor(new_tok, device=device).view(-1)
    for b in range(B):  # unfinished beams count as hypotheses when max_length is reached
        if not done[b]:
            for k in range(K):
                sc = float(scores[b, k])
                if sc > float("-inf"):
                    finished[b].append(hyp(b, k, history[b][k], attn_hist[b][k], sc, False))
    return [sorted(f, key=lambda h: h.score, reverse=True)[:n_best] for f in finished]


def greedy_search(
    step: StepFn, select: SelectFn, state: Any, batch_size: int, bos: int, eos: int, max_length: int = 100
) -> list[Hypothesis]:
    """Always take the most likely next token; one :class:`Hypothesis` per input."""
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    device = _device_of(state)
    tokens = torch.full((batch_size,), bos, dtype=torch.long, device=device)
    seqs: list[list[int]] = [[] for _ in range(batch_size)]
    atts: list[list[Tensor]] = [[] for _ in range(batch_size)]
    logps = [0.0] * batch_size
    ended = [False] * batch_size
    for _ in range(max_length):
        logits, state, attn = step(tokens, state)
        logp = F.log_softmax(logits.float(), dim=-1)
        best, nxt = logp.max(-1)
        for b in range(batch_size):
            if ended[b]:
                continue
            logps[b] += float(best[b])
            if attn is not None:
                atts[b].append(attn[b].detach())
            if int(nxt[b]) == eos:
                ended[b] = True
            else:
                seqs[b].append(int(nxt[b]))
        if all(ended):
            break
        tokens = nxt
    return [
        Hypothesis(seqs[b], logps[b], logps[b], ended[b], torch.stack(atts[b]) if atts[b] else None)
        for b in range(batch_size)
    ]


def _device_of(state: Any) -> torch.device:
    if isinstance(state, Tensor):
        return state.device
    if isinstance(state, (tuple, list)):
        for s in state:
            return _device_of(s)
    device = getattr(state, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")
