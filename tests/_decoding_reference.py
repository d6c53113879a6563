"""The beam and greedy search as they were before issue 13 (a Python loop over inputs and beams, per-step host
reads, attention lists copied per beam): the oracle that the batched search must reproduce exactly."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnkit.decoding import Hypothesis, SelectFn, StepFn, _device_of, length_penalty


def reference_beam_search(
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


def reference_greedy_search(
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
