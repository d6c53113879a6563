"""Turning a step-by-step token model into sequences: sampling (temperature, top-k, top-p), greedy and beam search.

Models plug in through two functions:

* ``step(tokens (N,), state) -> (logits (N, V), state, attention (N, S) or None)``: advance by one token;
* ``select(state, index (M,)) -> state``: keep/reorder/duplicate batch entries of a state.

One-to-many models, language models and encoder-decoders all expose these (``decode_step``, ``select_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def _check_every(device: torch.device) -> int:
    """Steps between "is every input done?" checks. Reading a CPU tensor costs nothing; on an accelerator it waits
    for the device, so the loop checks every few steps and runs a few idle steps at the end instead (finished rows
    are frozen, so the results are the same)."""
    return 1 if device.type == "cpu" else 8


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
    every = _check_every(first.device)
    for t in range(max_length):
        logits, state, _ = step(tokens, state)
        drawn = sample_next(logits, sampling, generator)
        nxt = drawn.masked_fill(done, pad_token)
        out.append(nxt)
        if stop_token is not None:
            newly = (nxt == stop_token) & ~done
            lengths = torch.where(newly, t + 1, lengths)
            done |= newly
            if (t + 1) % every == 0 and bool(done.all()):
                break
        tokens = drawn  # finished rows keep running on real tokens; their output is padding
    tokens_out = torch.stack(out, 1)
    if stop_token is not None and every > 1 and bool(done.all()):  # idle steps after the last stop: cut them
        tokens_out = tokens_out[:, : int(lengths.max())]
    return tokens_out, lengths


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


#: fewest rows a step keeps when finished inputs leave the batch: matrix libraries switch to other kernels (other
#: rounding) for products of fewer rows, and the search must not change its numbers by leaving
MIN_ROWS = 8


def beam_search(
    step: StepFn,
    select: SelectFn,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    beam_size: int = 4,
    max_length: int | Sequence[int] = 100,
    alpha: float = 0.0,
    n_best: int = 1,
    *,
    compact: bool = True,
    early_stop: bool = True,
) -> list[list[Hypothesis]]:
    """Beam search from ``state`` (batch ``batch_size``) starting with token ``bos``.

    Keeps the ``beam_size`` best partial sequences per input; a sequence ends at ``eos`` or at ``max_length`` (one
    for all inputs, or one per input: each input's search is then the one it would have alone with its own).
    An input is done once it has ``beam_size`` finished hypotheses. Returns, per input, the ``n_best``
    hypotheses by ``score`` (log-probability / length penalty with exponent ``alpha``), best first.

    Every step is a fixed set of tensor operations over all ``B * K`` beams at once (no Python loop over inputs or
    beams): each step records its back-pointers, tokens, attention rows and the end-of-sequence candidates it
    accepted, and the hypotheses are read back along the back-pointers once, at the end; attention history is
    never copied from beam to beam.

    ``early_stop``: an input is also done as soon as none of its live beams can reach the ``n_best``-th best
    hypothesis it has finished: log-probabilities only fall as a sequence grows, so a live beam's best possible
    score is its log-probability divided by the largest length penalty still reachable (exact for any ``alpha``;
    rounding is monotone, so the bound holds in floating point too). The returned hypotheses are the same; only
    the unreturned ones an input would still have collected are not searched for.

    With ``compact``, inputs that are done leave the batch (``select`` then gets an index with fewer rows: the
    remaining inputs' beams, ``beam_size`` per input, in order), so the model stops computing for them; at least
    :data:`MIN_ROWS` rows stay; and the first step runs one row per input (all beams start identical), so
    ``select`` first gets ``B`` rows and widens them to ``B * K``. The search is the same; the model's numbers may
    differ in the last bit (vectorised kernels round the tail of a tensor differently), so ``compact=False``
    reproduces an uncompacted run bit for bit.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    caps = [max_length] * batch_size if isinstance(max_length, int) else [int(c) for c in max_length]
    if len(caps) != batch_size or (caps and min(caps) < 1):
        raise ValueError(f"max_length must be >= 1 (one, or one per input), got {max_length}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in 1..beam_size ({beam_size}), got {n_best}")
    B, K = batch_size, beam_size
    device = _device_of(state)
    longest, cap_steps = max(caps, default=1), set(caps)
    W = 1 if compact else K  # beams per input in this step's rows
    if W > 1:
        state = select(state, torch.arange(B, device=device).repeat_interleave(K))
    tokens = torch.full((B * W,), bos, dtype=torch.long, device=device)
    scores = torch.full((B, W), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one
    n_done = torch.zeros(B, dtype=torch.long, device=device)  # finished hypotheses per input
    done = torch.zeros(B, dtype=torch.bool, device=device)
    alive = torch.arange(B, device=device)  # the input of each row block
    best = torch.full((B, n_best), float("-inf"), dtype=torch.float64, device=device)  # best finished scores
    reach = _reachable_penalties(longest, alpha)
    upto = [max((length_penalty(n, alpha) for n in range(1, c + 1)), default=1.0) for c in range(longest + 1)]
    reach_cap = torch.tensor([upto[c] for c in caps], dtype=torch.float64, device=device)
    cap = torch.tensor(caps, dtype=torch.long, device=device)
    cut: list[tuple[int, Tensor, Tensor]] = []  # inputs that reached their max_length: (step, inputs, scores)
    trace: list[tuple[Tensor, ...]] = []  # per step: inputs, parent, token, accepted, cand src, cand score
    attns: list[Tensor] = []
    every = _check_every(device)
    buf: Tensor | None = None
    for t in range(longest):
        logits, state, attn = step(tokens, state)
        G, V = alive.shape[0], logits.shape[-1]
        # log-probabilities, then candidate scores, in one buffer kept across steps: fresh (N, V) tensors every step
        # cost a page fault per 4 KiB (as much as the arithmetic)
        if buf is None or buf.shape[1] != V:
            buf = torch.empty(B * K, V, device=device)  # the most rows a step has
        cand = torch._log_softmax(logits.detach().float(), -1, False, out=buf[: G * W])  # (G*W, V)
        cand = cand.add_(scores.view(-1, 1)).view(G, W * V)
        top_scores, top_idx = cand.topk(min(2 * K, W * V), dim=1)  # (G, C), best first
        src, tok = top_idx // V, top_idx % V
        valid = (top_scores > float("-inf")) & ~done[:, None]
        ends = tok == eos
        live = valid & ~ends
        # candidates are taken best first until K live ones are found; the end tokens met on the way finish
        # hypotheses, as long as the input has fewer than K finished
        seen = valid & (live.cumsum(1) - live.long() < K)
        ending = seen & ends
        accepted = ending & (n_done[:, None] + ending.cumsum(1) <= K)
        keep = live & seen
        order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :K]  # the kept ones first, in order
        if order.shape[1] < K:  # fewer candidates than beams (a tiny vocabulary at the first step)
            order = torch.cat([order, order[:, :1].expand(-1, K - order.shape[1])], 1)
        kept = keep.gather(1, order) & (torch.arange(K, device=device) < keep.shape[1])
        parent = torch.where(kept, src.gather(1, order), 0)  # dead beams: parent 0, token eos, score -inf
        new_tok = torch.where(kept, tok.gather(1, order), eos)
        scores = torch.where(kept, top_scores.gather(1, order), float("-inf"))
        n_done = n_done + accepted.sum(1)
        done = done | (n_done >= K)
        if t + 1 in cap_steps:  # the live beams of inputs at their max_length count as (unfinished) hypotheses
            last = ~done & (cap == t + 1)
            cut.append((t, alive[last], scores[last]))
            done = done | last
        if early_stop and t + 1 < longest:
            # the same scores _read_beams gives (float32 log-prob / penalty, in float64), the n_best best kept
            ended = torch.where(accepted, top_scores.double() / length_penalty(t + 1, alpha), float("-inf"))
            best = torch.cat([best, ended], 1).topk(n_best, dim=1).values
            # the largest penalty of lengths t + 2 .. cap: at most that of 1 .. cap and of t + 2 .. longest
            bound = scores.max(1).values.double() / torch.clamp(reach_cap, max=reach[t + 1])
            done = done | (best[:, -1] > bound)
        trace.append((alive, parent, new_tok, accepted, src, top_scores))
        if attn is not None:
            attns.append(attn.detach())
        rows = (torch.arange(G, device=device)[:, None] * W + parent).view(-1)
        W = K
        if (t + 1) % every == 0 or t + 1 == longest:
            live_inputs = int((~done).sum())
            if live_inputs == 0:
                break
            if compact and live_inputs < G and G * K > MIN_ROWS:
                # finished inputs leave; a few stay if rows would run short
                stay = ~done
                short = -(-MIN_ROWS // K) - live_inputs
                if short > 0:
                    stay |= done & (done.cumsum(0) <= short)
                index = stay.nonzero().squeeze(1)
                rows = rows.view(G, K)[index].view(-1)
                alive, scores, n_done, done, new_tok, best, cap = (
                    v[index] for v in (alive, scores, n_done, done, new_tok, best, cap)
                )
                reach_cap = reach_cap[index]
        state = select(state, rows)
        tokens = new_tok.view(-1)
    return _read_beams(trace, attns, cut, B, K, alpha, n_best)


def _reachable_penalties(max_length: int, alpha: float) -> list[float]:
    """``[t]``: the largest length penalty of a hypothesis of ``t + 1 .. max_length`` tokens (end token counted):
    a live beam after step ``t`` can score at most its log-probability (<= 0) divided by ``[t + 1]``."""
    out = [0.0] * (max_length + 1)
    hi = float("-inf")
    for n in range(max_length, 0, -1):
        hi = max(hi, length_penalty(n, alpha))
        out[n - 1] = hi
    out[max_length] = hi
    return out


def _read_beams(
    trace: list[tuple[Tensor, ...]],
    attns: list[Tensor],
    cut: list[tuple[int, Tensor, Tensor]],
    B: int,
    K: int,
    alpha: float,
    n_best: int,
) -> list[list[Hypothesis]]:
    """The hypotheses of :func:`beam_search`, read along the recorded back-pointers (one copy to the host).

    Hypotheses are ranked first (a score needs only the log-probability and the length); tokens and attention
    rows are read back for the ``n_best`` returned per input only.
    """
    inputs = [s[0].tolist() for s in trace]
    parents = [s[1].tolist() for s in trace]  # [step][row][k]
    toks = [s[2].tolist() for s in trace]
    cand_src = [s[4].tolist() for s in trace]
    cand_score = [s[5].tolist() for s in trace]
    row_of = [{b: r for r, b in enumerate(ids)} for ids in inputs]  # [step] input -> row
    starts = [0]  # first row of each step in the concatenated attention
    for a in attns:
        starts.append(starts[-1] + a.shape[0])
    width = [(starts[s + 1] - starts[s]) // len(inputs[s]) for s in range(len(attns))]  # rows per input
    attention = torch.cat(attns) if attns else None  # (sum of rows, S)

    def read(b: int, last: int, k: int, extra: list[int]) -> tuple[list[int], Tensor | None]:
        """Tokens of beam ``k`` of input ``b`` after step ``last``; attention rows fed at steps 0..last, + extra."""
        out, rows = [], []
        for s in range(last, -1, -1):
            r = row_of[s][b]
            p = parents[s][r][k]
            out.append(toks[s][r][k])
            if attention is not None:
                rows.append(starts[s] + r * width[s] + p)
            k = p
        rows = rows[::-1] + extra
        att = attention.index_select(0, torch.tensor(rows)) if attention is not None and rows else None
        return out[::-1], att

    # (score, log_prob, finished, how to read it back) per hypothesis, in the order the search found them
    found: list[list[tuple[float, float, bool, tuple[int, int, list[int]]]]] = [[] for _ in range(B)]
    for t in range(len(trace)):
        for r, c in trace[t][3].nonzero().tolist():  # input, then candidate order: the order they were found
            b, k, logp = inputs[t][r], cand_src[t][r][c], cand_score[t][r][c]
            row = [starts[t] + r * width[t] + k] if attns else []
            found[b].append((logp / length_penalty(t + 1, alpha), logp, True, (t - 1, k, row)))
    for t, ids, final in cut:  # unfinished beams count as hypotheses when max_length is reached
        for b, row in zip(ids.tolist(), final.tolist()):
            for k, logp in enumerate(row):
                if logp > float("-inf"):
                    found[b].append((logp / length_penalty(t + 1, alpha), logp, False, (t, k, [])))
    out = []
    for b in range(B):
        best = sorted(found[b], key=lambda h: h[0], reverse=True)[:n_best]
        hyps = []
        for score, logp, finished, (last, k, extra) in best:
            tokens, att = read(b, last, k, extra)
            hyps.append(Hypothesis(tokens, logp, score, finished, att))
        out.append(hyps)
    return out


def greedy_search(
    step: StepFn,
    select: SelectFn,
    state: Any,
    batch_size: int,
    bos: int,
    eos: int,
    max_length: int = 100,
    *,
    compact: bool = True,
) -> list[Hypothesis]:
    """Always take the most likely next token; one :class:`Hypothesis` per input.

    Tensor operations over the whole batch per step; the hypotheses are read back once, at the end. With
    ``compact``, inputs that ended leave the batch (``select`` gets the remaining rows), as in :func:`beam_search`.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    device = _device_of(state)
    B = batch_size
    tokens = torch.full((B,), bos, dtype=torch.long, device=device)
    logps = torch.zeros(B, dtype=torch.float64, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    steps = torch.full((B,), max_length, dtype=torch.long, device=device)  # tokens before eos
    alive = torch.arange(B, device=device)  # the input of each row
    trace: list[tuple[Tensor, Tensor]] = []  # per step: inputs, picked token
    attns: list[Tensor] = []
    every = _check_every(device)
    for t in range(max_length):
        logits, state, attn = step(tokens, state)
        logp = F.log_softmax(logits.float(), dim=-1)
        best, nxt = logp.max(-1)
        was = ended[alive]
        logps = logps.index_add(0, alive, torch.where(was, 0.0, best.double()))
        newly = ~was & (nxt == eos)
        steps = steps.index_copy(0, alive, torch.where(newly, t, steps[alive]))
        ended = ended.index_copy(0, alive, was | newly)
        trace.append((alive, nxt))
        if attn is not None:
            attns.append(attn.detach())
        if (t + 1) % every == 0 or t + 1 == max_length:
            live = int((~ended).sum())
            if live == 0:
                break
            G = alive.shape[0]
            if compact and live < G and G > MIN_ROWS:
                stay = ~ended[alive]
                if live < MIN_ROWS:
                    stay |= ~stay & ((~stay).cumsum(0) <= MIN_ROWS - live)
                index = stay.nonzero().squeeze(1)
                state = select(state, index)
                alive, nxt = alive[index], nxt[index]
        tokens = nxt
    inputs = [s[0].tolist() for s in trace]
    picked = [s[1].tolist() for s in trace]
    starts = [0]
    for a in attns:
        starts.append(starts[-1] + a.shape[0])
    attention = torch.cat(attns) if attns else None  # (sum of rows, S)
    n, fin, lp = steps.tolist(), ended.tolist(), logps.tolist()
    rows_of: list[list[tuple[int, int]]] = [[] for _ in range(B)]  # per input: (step, row) in step order
    for s_, ids in enumerate(inputs):
        for r, b_ in enumerate(ids):
            rows_of[b_].append((s_, r))
    out = []
    for b_ in range(B):
        m = min(n[b_], len(rows_of[b_]))
        seq = [picked[s_][r] for s_, r in rows_of[b_][:m]]
        att = None
        if attention is not None:
            kept = rows_of[b_][: m + (1 if fin[b_] else 0)]
            att = attention.index_select(0, torch.tensor([starts[s_] + r for s_, r in kept], dtype=torch.long))
        out.append(Hypothesis(seq, lp[b_], lp[b_], fin[b_], att))
    return out


def _device_of(state: Any) -> torch.device:
    if isinstance(state, Tensor):
        return state.device
    if isinstance(state, (tuple, list)):
        for s in state:
            return _device_of(s)
    device = getattr(state, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")
