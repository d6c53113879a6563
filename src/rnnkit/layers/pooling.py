"""Pooling a sequence of outputs ``(B, T, D*H)`` into one vector ``(B, D*H)`` (many-to-one)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOLINGS = ("last", "mean", "max", "attention")


def length_mask(lengths: Tensor | None, B: int, T: int, device: torch.device) -> Tensor:
    """``(B, T)`` bool, True at valid steps (all True without lengths)."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]


class Pooling(nn.Module):
    """Sequence -> vector.

    * ``last``: the top layer's state after the last valid step. Bidirectional: the forward direction's last
      valid step ⊕ the backward direction's first step (each direction's full summary).
    * ``mean`` / ``max``: over valid steps only.
    * ``attention``: a learned query scores every valid step, ``w = softmax(v^T tanh(W o_t))``; the weights of
      the last call are kept in ``last_weights`` ``(B, T)`` for inspection.
    """

    def __init__(self, kind: str, size: int, num_directions: int = 1) -> None:
        super().__init__()
        if kind not in POOLINGS:
            raise ValueError(f"unknown pooling {kind!r}; expected one of {list(POOLINGS)}")
        self.kind, self.size, self.num_directions = kind, size, num_directions
        if kind == "attention":
            self.proj = nn.Linear(size, size)
            self.query = nn.Linear(size, 1, bias=False)
        self.last_weights: Tensor | None = None

    def forward(self, outputs: Tensor, lengths: Tensor | None, h_final: Tensor) -> Tensor:
        """``outputs (B, T, D*H)``, ``lengths (B,)`` or None, ``h_final (L*D, B, H)`` -> ``(B, D*H)``."""
        if self.kind == "last":
            return torch.cat(list(h_final[-self.num_directions :]), dim=-1)  # top layer, each direction
        B, T, _ = outputs.shape
        mask = length_mask(lengths, B, T, outputs.device)  # (B, T)
        if lengths is not None and bool((lengths == 0).any()):
            raise ValueError(
                f"{self.kind} pooling needs every sequence to have at least one step, got lengths {lengths.tolist()}"
            )
        if self.kind == "mean":
            return (outputs * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).to(outputs.dtype)
        if self.kind == "max":
            return outputs.masked_fill(~mask[..., None], float("-inf")).amax(1)
        scores = self.query(torch.tanh(self.proj(outputs))).squeeze(-1)  # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        self.last_weights = weights.detach()
        return torch.einsum("bt,btd->bd", weights, outputs)
