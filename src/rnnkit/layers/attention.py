"""Attention over encoder outputs: Bahdanau (additive) and Luong (dot, general), with source masks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

ATTENTIONS = ("none", "bahdanau", "dot", "general")


class Attention(nn.Module):
    """Scores a query against every source position, softmax over valid positions, returns the weighted keys.

    ``forward(query (B, Q) or (B, T, Q), keys (B, S, K), mask (B, S) bool)`` ->
    ``(context (B, [T,] K), weights (B, [T,] S))``; masked positions get weight exactly 0.
    """

    def score(self, query: Tensor, keys: Tensor) -> Tensor:  # (B, T, Q), (B, S, K) -> (B, T, S)
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query
        scores = self.score(q, keys)  # (B, T, S)
        if mask is not None:
            if mask.shape != keys.shape[:2]:
                raise ValueError(f"attention mask must be (B, S) = {tuple(keys.shape[:2])}, got {tuple(mask.shape)}")
            if not bool(mask.any(1).all()):
                raise ValueError("attention: a source sequence has no valid position (length 0)")
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)  # (B, T, K)
        return (context.squeeze(1), weights.squeeze(1)) if single else (context, weights)


class BahdanauAttention(Attention):
    r"""Additive attention (Bahdanau et al. 2015): :math:`e_{ts} = v^\top \tanh(W_q q_t + W_k k_s)`."""

    def __init__(self, query_size: int, key_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        size = attention_size or query_size
        self.w_q = nn.Linear(query_size, size, bias=False)
        self.w_k = nn.Linear(key_size, size)
        self.v = nn.Linear(size, 1, bias=False)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        # (B, T, 1, A) + (B, 1, S, A) -> (B, T, S)
        return self.v(torch.tanh(self.w_q(query).unsqueeze(2) + self.w_k(keys).unsqueeze(1))).squeeze(-1)


class LuongAttention(Attention):
    r"""Multiplicative attention (Luong et al. 2015): ``dot`` :math:`q_t^\top k_s` or ``general``
    :math:`q_t^\top W k_s`."""

    def __init__(self, query_size: int, key_size: int, method: str = "general") -> None:
        super().__init__()
        if method not in ("dot", "general"):
            raise ValueError(f"LuongAttention: method must be 'dot' or 'general', got {method!r}")
        if method == "dot" and query_size != key_size:
            raise ValueError(
                f"dot attention needs query and key sizes to match, got {query_size} and {key_size}; "
                "use 'general' (a learned map between them)"
            )
        self.method = method
        self.w = nn.Linear(query_size, key_size, bias=False) if method == "general" else None

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self.w(query) if self.w is not None else query
        return torch.bmm(q, keys.transpose(1, 2))


def make_attention(kind: str, query_size: int, key_size: int) -> Attention | None:
    """``none`` -> None, ``bahdanau``, ``dot``, ``general``."""
    if kind not in ATTENTIONS:
        raise ValueError(f"unknown attention {kind!r}; expected one of {list(ATTENTIONS)}")
    if kind == "none":
        return None
    if kind == "bahdanau":
        return BahdanauAttention(query_size, key_size)
    return LuongAttention(query_size, key_size, kind)
