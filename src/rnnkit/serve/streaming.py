"""Streamers: how a task's model advances many streams by their next observations in one batched call.

A streamer turns an ``observe`` request into model inputs (:meth:`Streamer.parse`), and steps a batch of streams
from their stored states (:meth:`Streamer.step`), returning each stream's new state (bytes, for the store) and its
answer. What a stream is depends on the task:

* language model: the RNN state after the tokens so far; the answer is the next-token distribution (and a draw).
* tagger with a unidirectional RNN: the RNN state (and, with a CRF, the Viterbi scores); the answer is the tag of
  each new token given the tokens so far, i.e. the last tag ``predict`` gives on the prefix.
* forecaster: a window model, so the state is the last ``timestep`` rows (see :mod:`.forecast_stream`).
* bidirectional taggers, classifiers and translators read whole inputs: they cannot stream (use /v1/predict).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..decoding import SamplingConfig, sample_next
from ..tasks.base import Task
from .config import Limits
from .schemas import ObserveRequest


class RequestError(ValueError):
    """A request the model cannot take: HTTP ``status`` with a message naming the ``field``."""

    def __init__(self, field: str | None, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


class RawJSON(bytes):
    """An answer already serialised as JSON (a streamer's fast path: no dict to build and dump per stream)."""


#: what a step gives per stream: (new state, answer) or the error that stream's observation caused
StepResult = tuple[bytes, dict[str, Any] | RawJSON] | RequestError


def _number(value: float, finite: bool) -> bytes:
    return b"%r" % value if finite or math.isfinite(value) else b"null"


class Streamer:
    """The base: a model that cannot stream (every observe is a 400 with ``reason``)."""

    streams = False
    #: what a stream is (for /v1/model), or why there are none
    describe = ""
    #: fields of an observe request this model reads
    fields: tuple[str, ...] = ()

    def __init__(self, task: Task, reason: str = "", limits: Limits | None = None) -> None:
        self.task, self.limits = task, limits or Limits()
        self.describe = reason or self.describe

    def parse(self, req: ObserveRequest) -> tuple[Any, int]:
        """The model inputs of one observe request and how many observations they are (raises RequestError)."""
        raise RequestError(None, self.describe, status=400)

    def step(self, states: list[bytes | None], inputs: list[Any], reqs: list[ObserveRequest]) -> list[StepResult]:
        """Advance each stream from its ``states[i]`` (None: a new stream) by ``inputs[i]``."""
        raise RequestError(None, self.describe, status=400)


def one_of(req: ObserveRequest, allowed: tuple[str, ...]) -> tuple[str, Any]:
    """The one observation field given in ``req`` among ``allowed``; names the problem otherwise."""
    given = [f for f in ("row", "rows", "token", "tokens", "text") if getattr(req, f) is not None]
    if len(given) == 1 and given[0] in allowed:
        return given[0], getattr(req, given[0])
    wanted = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
    if not given:
        raise RequestError(allowed[0], f"give the observation as {wanted}")
    bad = [f for f in given if f not in allowed]
    field = bad[0] if bad else given[1]
    raise RequestError(field, f"give the observation as exactly one of {wanted}; got {' and '.join(given)}")


class RNNStreamer(Streamer):
    """Token-in models with a unidirectional RNN: states are ``(L, H)`` per state tensor, stored as float32."""

    streams = True
    fields = ("token", "tokens", "text")

    def __init__(self, task: Task, limits: Limits | None = None) -> None:
        super().__init__(task, limits=limits)
        self.model = task.model
        rnn = self.model.rnn
        self.shape = (rnn.num_layers, rnn.hidden_size)
        self.n_states = len(rnn.initial_state(1))
        self.vocab = task.vocab  # type: ignore[attr-defined]

    # ---- state <-> bytes ----------------------------------------------------------------------------------------
    def state_size(self) -> int:
        return self.n_states * self.shape[0] * self.shape[1]

    def decode_states(self, states: list[bytes | None], extra: int = 0) -> tuple[tuple[Tensor, ...], np.ndarray]:
        """Stored states -> the batch state ``(L, B, H)`` per tensor, and the ``(B, extra)`` trailing floats."""
        B, n = len(states), self.state_size()
        zero = bytes(4 * (n + extra))  # a new stream starts from zeros
        joined = bytearray(b"".join(zero if blob is None else blob for blob in states))  # one copy, writable
        flat = np.frombuffer(joined, np.float32).reshape(B, n + extra)
        L, H = self.shape
        rnn = torch.from_numpy(flat[:, :n]).view(B, self.n_states, L, H).permute(1, 2, 0, 3)
        return tuple(s.contiguous() for s in rnn), flat[:, n:]

    def encode_states(self, state: tuple[Tensor, ...], extra: np.ndarray | None = None) -> list[bytes]:
        B = state[0].shape[1]
        flat = torch.stack(state, 0).permute(2, 0, 1, 3).reshape(B, -1).float().cpu().numpy()
        if extra is not None:
            flat = np.concatenate([flat, extra.astype(np.float32)], 1)
        return [row.tobytes() for row in flat]

    # ---- inputs ---------------------------------------------------------------------------------------------------
    def token_ids(self, req: ObserveRequest) -> list[int]:
        kind, value = one_of(req, self.fields)
        if kind == "token":
            return [self.vocab.stoi.get(value, self.vocab.unk)]
        if kind == "tokens":
            return [self.vocab.stoi.get(t, self.vocab.unk) for t in value]
        ids = self.text_ids(value)
        if not ids:
            raise RequestError("text", "the text has no tokens")
        return ids

    def text_ids(self, text: str) -> list[int]:
        return self.task.ids(text)  # type: ignore[attr-defined]

    def parse(self, req: ObserveRequest) -> tuple[list[int], int]:
        ids = self.token_ids(req)
        if len(ids) > self.limits.max_chunk:
            raise RequestError("text", f"at most {self.limits.max_chunk} tokens per observation, got {len(ids)}")
        return ids, len(ids)

    @torch.no_grad()
    def advance(self, states: tuple[Tensor, ...], inputs: list[list[int]]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Outputs ``(B, K, V)`` at each new token (K the longest chunk; junk past each chunk) and the new state."""
        lengths = [len(i) for i in inputs]
        # one forward call (the fused kernel where the cell has one), also for single steps: on a CPU it beats the
        # cell-by-cell step() for a batch of streams
        T, same = max(lengths), min(lengths) == max(lengths)
        x = torch.tensor(inputs if same else [ids + [0] * (T - len(ids)) for ids in inputs], dtype=torch.long)
        return self.model(x, states, None if same else torch.tensor(lengths))


class LMStreamer(RNNStreamer):
    """A language model: each observe feeds tokens and answers the next-token distribution (and a draw)."""

    describe = (
        "a stream is a text read token by token: the server keeps the RNN state after the tokens so far and "
        "answers the next-token distribution (and a draw with 'sample'), without the special tokens, as "
        "`rnnkit generate` draws"
    )

    def __init__(self, task: Task, limits: Limits | None = None) -> None:
        super().__init__(task, limits)
        # what generation never draws (the task's own list): never listed or drawn here either
        self.banned = torch.as_tensor(task.banned, dtype=torch.long)  # type: ignore[attr-defined]
        self._token_json = [json.dumps(t).encode() for t in self.vocab.itos]

    @torch.no_grad()
    def step(self, states: list[bytes | None], inputs: list[Any], reqs: list[ObserveRequest]) -> list[StepResult]:
        state, _ = self.decode_states(states)
        out, new = self.advance(state, inputs)
        last = torch.tensor([len(i) - 1 for i in inputs])
        logits = out[torch.arange(len(inputs)), last].index_fill(-1, self.banned, float("-inf"))  # (B, V)
        probs = torch.softmax(logits.float(), -1)
        top_k = min(max(r.top for r in reqs), probs.shape[-1] - len(self.banned))
        top_p, top_i = probs.topk(top_k, -1)
        finite = bool(torch.isfinite(top_p).all())
        p, idx = top_p.tolist(), top_i.tolist()
        blobs = self.encode_states(new)
        results: list[StepResult] = []
        token = self._token_json
        for b, req in enumerate(reqs):
            # the answer as JSON straight away (tokens escaped once, floats as repr: valid JSON when finite)
            listed = zip(p[b][: req.top], idx[b][: req.top])
            entries = b",".join(b'{"token":%s,"p":%s}' % (token[i], _number(q, finite)) for q, i in listed)
            raw = b'{"next":[' + entries + b"]"
            if req.sample is not None:
                s = req.sample
                gen = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
                cfg = SamplingConfig(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
                raw += b',"sample":' + token[int(sample_next(logits[b : b + 1], cfg, gen)[0])]
            results.append((blobs[b], RawJSON(raw + b"}")))
        return results


class TagStreamer(RNNStreamer):
    """A unidirectional tagger: the tag of each new token given the tokens before it (with a CRF: the last tag of
    the Viterbi path over the prefix, kept as the ``K`` Viterbi scores beside the RNN state)."""

    fields = ("token", "tokens")
    describe = (
        "a stream is a sentence read token by token: the server keeps the RNN state (and the CRF's Viterbi scores) "
        "and answers the tag of each new token given the tokens so far"
    )

    def text_ids(self, text: str) -> list[int]:  # pragma: no cover - text is not an accepted field
        raise RequestError("text", "a tagger observes tokens: give token or tokens")

    def token_ids(self, req: ObserveRequest) -> list[int]:
        kind, value = one_of(req, self.fields)
        tokens = [value] if kind == "token" else value
        return self.vocab.encode(self.task._norm(tokens))  # type: ignore[attr-defined]

    @torch.no_grad()
    def step(self, states: list[bytes | None], inputs: list[Any], reqs: list[ObserveRequest]) -> list[StepResult]:
        crf = self.model.crf
        K = len(self.task.tags)  # type: ignore[attr-defined]
        state, alpha = self.decode_states(states, K if crf is not None else 0)
        out, new = self.advance(state, inputs)
        tags = self.task.tags  # type: ignore[attr-defined]
        answers: list[list[str]] = [[] for _ in inputs]
        if crf is None:
            best = out.argmax(-1)
            for b, ids in enumerate(inputs):
                answers[b] = [tags[int(t)] for t in best[b, : len(ids)]]
            return [(blob, {"tags": a}) for blob, a in zip(self.encode_states(new), answers)]
        # the Viterbi recursion over the new tokens, from the scores stored with each stream
        score = torch.from_numpy(alpha.copy())
        fresh = torch.tensor([s is None for s in states])
        for t in range(out.shape[1]):
            emit = out[:, t]
            first = crf.start + emit
            nxt = (score.unsqueeze(2) + crf.transitions).max(1).values + emit
            nxt = torch.where(fresh[:, None], first, nxt) if t == 0 else nxt
            valid = torch.tensor([len(i) > t for i in inputs])
            score = torch.where(valid[:, None], nxt, score)
            last = (score + crf.end).argmax(-1)
            for b in torch.nonzero(valid).flatten().tolist():
                answers[b].append(tags[int(last[b])])
        blobs = self.encode_states(new, score.numpy())
        return [(blob, {"tags": a}) for blob, a in zip(blobs, answers)]


def streamer_for(task: Task, limits: Limits | None = None) -> Streamer:
    """The streamer of a loaded task (one that refuses to stream, with the reason, when the model cannot)."""
    name = task.name
    if name == "lm":
        return LMStreamer(task, limits)
    if name == "tag":
        if task.model.cfg.rnn.bidirectional:
            return Streamer(
                task,
                "this tagger is bidirectional: each tag depends on the words after it, so it reads whole sentences; "
                "POST them to /v1/predict",
            )
        return TagStreamer(task, limits)
    if name == "forecast":
        from .forecast_stream import ForecastStreamer

        return ForecastStreamer.for_task(task, limits)
    reads = {"classify": "whole texts", "translate": "whole sentences"}.get(name, "whole inputs")
    return Streamer(task, f"a {name} model reads {reads}, not a stream: POST them to /v1/predict")
