"""Linear-chain conditional random field over per-timestep tag scores (Lafferty et al. 2001; Lample et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: the score of a forbidden transition: exp(-1e4) is 0 in float32, yet sums stay finite (no inf - inf = nan)
FORBIDDEN = -1e4


def scheme_constraints(tags: Sequence[str]) -> tuple[Tensor, Tensor, Tensor] | None:
    """Which transitions the chunk scheme of ``tags`` allows: ``(transitions (K, K), start (K), end (K))`` bool,
    or None when the tags are not IOB2/BIOES (``B-X``, ``I-X``, [``E-X``, ``S-X``], ``O``).

    IOB2: ``I-X`` only after ``B-X`` or ``I-X`` (so never first). BIOES also: after ``B-X``/``I-X`` only
    ``I-X``/``E-X``; ``E-X`` only after ``B-X``/``I-X``; a sentence never ends inside an entity.
    """
    parts = [t.split("-", 1) if "-" in t else [t, ""] for t in tags]
    prefixes = {p for p, _ in parts}
    if not prefixes <= {"O", "B", "I", "E", "S"} or any((p == "O") != (not x) for p, x in parts) or "B" not in prefixes:
        return None
    bioes = bool(prefixes & {"E", "S"})
    K = len(tags)
    trans = torch.ones(K, K, dtype=torch.bool)
    start, end = torch.ones(K, dtype=torch.bool), torch.ones(K, dtype=torch.bool)
    for j, (q, y) in enumerate(parts):
        inside = q in ("I", "E") if bioes else q == "I"  # continues an entity opened before
        start[j] = not inside
        end[j] = not (bioes and q in ("B", "I"))  # BIOES: a sentence never ends inside an entity
        for i, (p, x) in enumerate(parts):
            opened = p in ("B", "I")
            if inside:
                trans[i, j] = opened and x == y
            elif bioes and opened:
                trans[i, j] = False  # BIOES: an open entity must be continued or closed
    return trans, start, end


class LinearChainCRF(nn.Module):
    r"""Tag-sequence scores :math:`s(y) = \pi_{y_1} + \sum_t E_{t, y_t} + \sum_{t>1} A_{y_{t-1}, y_t} + \omega_{y_n}`.

    Parameters: ``transitions (K, K)`` (from row tag to column tag), ``start (K)``, ``end (K)``. Emissions are the
    network's ``(B, T, K)`` outputs; ``mask (B, T)`` marks valid steps: per sequence a prefix of ones (right-padded,
    at least one), anything else is refused.
    The negative log-likelihood uses the forward algorithm, decoding uses Viterbi; both are O(T K^2).
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"LinearChainCRF: num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))

    def constrain(self, transitions: Tensor, start: Tensor | None = None, end: Tensor | None = None) -> None:
        """Forbid transitions (``False`` in the bool masks ``transitions (K, K)``, ``start (K)``, ``end (K)``): their
        scores are set to :data:`FORBIDDEN` and kept there (their gradients are zeroed), so training never spends
        probability on them and Viterbi never outputs them (e.g. ``O`` followed by ``I-LOC``). The constraint lives
        in the parameters themselves: a saved model, its export and a streaming server decode the same way."""
        masks = {"transitions": transitions, "start": start, "end": end}
        for name, allowed in masks.items():
            if allowed is None:
                continue
            param = getattr(self, name)
            if allowed.shape != param.shape:
                raise ValueError(f"CRF.constrain: {name} must be {tuple(param.shape)}, got {tuple(allowed.shape)}")
            forbidden = ~allowed.to(torch.bool).to(param.device)
            if not bool(forbidden.any()):
                continue
            with torch.no_grad():
                param.masked_fill_(forbidden, FORBIDDEN)
            param.register_hook(lambda grad, f=forbidden: grad.masked_fill(f.to(grad.device), 0.0))

    def _check(self, emissions: Tensor, mask: Tensor | None) -> Tensor:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"CRF: expected emissions (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        B, T, _ = emissions.shape
        if mask is None:
            return torch.ones(B, T, dtype=torch.bool, device=emissions.device)
        if mask.shape != (B, T):
            raise ValueError(f"CRF: mask must be (B, T) = {(B, T)}, got {tuple(mask.shape)}")
        if T == 0:
            raise ValueError("CRF: every sequence needs at least one valid step, got T = 0")
        mask = mask.bool()
        # The recursions hold alpha over invalid steps and read the last tag at sum(mask) - 1: right only for a
        # prefix of ones. One vectorised test (a valid step after an invalid one) and one sync per call.
        holes = (mask[:, 1:] & ~mask[:, :-1]).any(1)
        if bool((holes | ~mask[:, 0]).any()):
            self._refuse(mask, holes)
        return mask

    @staticmethod
    def _refuse(mask: Tensor, holes: Tensor) -> None:
        """Raise for the first bad row of ``mask (B, T)``: a hole or left padding, else an empty sequence."""
        if bool(holes.any()):
            row = int(holes.nonzero()[0, 0])
            values = mask[row, :8].int().tolist()
            shown = ", ".join(map(str, values)) + (", ..." if mask.shape[1] > 8 else "")
            raise ValueError(f"CRF: mask must be a prefix of ones per sequence (right-padded); row {row} is [{shown}]")
        row = int((~mask[:, 0]).nonzero()[0, 0])
        raise ValueError(
            f"CRF: every sequence needs at least one valid step (mask[:, 0] must be all True); row {row} is empty"
        )

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """``s(y)`` of the given tag sequences ``tags (B, T)``: ``(B,)``."""
        mask = self._check(emissions, mask)
        if tags.shape != mask.shape:
            raise ValueError(f"CRF: tags must be (B, T) = {tuple(mask.shape)}, got {tuple(tags.shape)}")
        m = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return self.start[tags[:, 0]] + (emit * m).sum(1) + (trans * m[:, 1:]).sum(1) + self.end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log Z = log sum_y exp s(y)`` by the forward algorithm: ``(B,)``."""
        mask = self._check(emissions, mask)
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t : t + 1], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
        """Negative log-likelihood ``log Z - s(y)``; ``reduction`` ``mean`` (per sequence), ``sum`` or ``none``."""
        out = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        if reduction == "none":
            return out
        return out.sum() if reduction == "sum" else out.mean()

    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Viterbi: the best tag sequences ``(B, T)`` (0 past each length) and their scores ``(B,)``."""
        mask = self._check(emissions, mask)
        B, T, K = emissions.shape
        score = self.start + emissions[:, 0]
        backpointers = []
        for t in range(1, T):
            best, idx = (score.unsqueeze(2) + self.transitions).max(dim=1)  # (B, K): best previous tag per tag
            nxt = best + emissions[:, t]
            keep = mask[:, t : t + 1]
            score = torch.where(keep, nxt, score)
            # past the end, point each tag at itself so the backtrace walks through unchanged
            backpointers.append(torch.where(keep, idx, torch.arange(K, device=idx.device).expand(B, K)))
        score = score + self.end
        best_score, last = score.max(dim=1)
        path = [last]
        for bp in reversed(backpointers):
            last = bp.gather(1, last.unsqueeze(1)).squeeze(1)
            path.append(last)
        tags = torch.stack(path[::-1], dim=1)
        return tags.masked_fill(~mask, 0), best_score
