"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates that depend on the input only.

Because neither gate sees ``h_{t-1}``, the recurrence is linear in ``h``: a whole sequence is one scan
(:mod:`rnnkit.scan`: the parallel log-space scan, or its vectorised C++ walk on a CPU) in training, while
streaming is an O(1) update per step. All paths give the same outputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from ..scan import LOG_ZERO, linear_recurrence, minrnn_sequence
from .base import Cell, CellInit, Params, State

SCANS = ("auto", "log", "sequential")


def g(x: Tensor) -> Tensor:
    """Positive activation for candidates: ``x + 0.5`` for ``x >= 0``, ``sigmoid(x)`` otherwise."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log g(x)``, computed stably."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def _masked(log_a: Tensor, log_b: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Past each sequence's end: ``a = 1, b = 0`` so the state stays at its last valid value."""
    if lengths is None:
        return log_a, log_b, None
    T = log_a.shape[1]
    valid = (torch.arange(T, device=log_a.device) < lengths.to(log_a.device)[:, None]).unsqueeze(-1)  # (B, T, 1)
    return log_a.masked_fill(~valid, 0.0), log_b.masked_fill(~valid, LOG_ZERO), valid


class _ScanCell(Cell):
    """Shared options of minGRU and minLSTM: which solver runs the whole-sequence recurrence.

    ``scan="auto"`` uses the C++ sequential walk on a CPU when it is built and the parallel log-space scan
    otherwise; ``"log"`` forces the parallel scan (what an accelerator wants), ``"sequential"`` the C++ walk.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, init: CellInit | None = None, scan: str = "auto"
    ) -> None:
        if scan not in SCANS:
            raise ValueError(f"{type(self).__name__}: scan must be one of {SCANS}, got {scan!r}")
        self.scan_impl = scan
        super().__init__(input_size, hidden_size, bias, init)

    def extra_options(self) -> dict[str, Any]:
        return {"scan": self.scan_impl}

    def _fused(self, u: Tensor, h0: Tensor, lengths: Tensor | None) -> tuple[Tensor, State] | None:
        """The whole cell in one C++ walk over ``u`` (:func:`rnnkit.scan.minrnn_sequence`), where it runs."""
        if self.scan_impl == "log":
            return None
        res = minrnn_sequence(u, h0, lengths, lstm=self.gates == 3)
        return None if res is None else (res[0], (res[1],))

    def _solve(self, log_a: Tensor, log_b: Tensor, h0: Tensor, lengths: Tensor | None) -> tuple[Tensor, State]:
        log_a, log_b, valid = _masked(log_a, log_b, lengths)
        return _finish(linear_recurrence(log_a, log_b, h0, impl=self.scan_impl), h0, valid)  # type: ignore[arg-type]


def _finish(h: Tensor, h0: Tensor, valid: Tensor | None) -> tuple[Tensor, State]:
    last = h[:, -1] if h.shape[1] else h0
    if valid is not None:
        h = h * valid
    return h, (last,)


class MinGRUCell(_ScanCell):
    r"""minGRU step.

    .. math::
        z_t = \sigma(W_z x_t + b_z), \quad \tilde h_t = g(W_h x_t + b_h), \quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    with ``g(x) = x + 0.5`` for ``x >= 0`` and ``sigmoid(x)`` otherwise (keeps ``\tilde h > 0`` for the log-space
    scan). Gate order ``(z, h~)``: ``weight_ih (2H, F)``, ``bias_ih (2H)``; no recurrent weight. State ``(h,)``.
    """

    kind: ClassVar[str] = "mingru"
    gates: ClassVar[int] = 2
    keep_gate: ClassVar[tuple[int, float] | None] = (0, -1.0)  # keep = 1 - z
    gate_names: ClassVar[tuple[str, ...]] = ("z",)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        G = 2 * self.hidden_size
        return {"weight_ih": (G, self.input_size)} | ({"bias_ih": (G,)} if self.bias else {})

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        h, new, _ = self.recur_gates(u, state, p)
        return h, new

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """The step, also returning ``z`` (sigmoid gate) and ``h~`` (candidate), each ``(B, H)``."""
        k_z, k_h = u.chunk(2, -1)
        z, cand = torch.sigmoid(k_z), g(k_h)
        h = (1 - z) * state[0] + z * cand
        return h, (h,), {"z": z, "h~": cand}

    def scan(self, x: Tensor, state: State, p: Params, lengths: Tensor | None) -> tuple[Tensor, State]:
        u = self.project(x, p)  # (B, T, 2H)
        fused = self._fused(u, state[0], lengths)
        if fused is not None:
            return fused
        k_z, k_h = u.chunk(2, -1)  # (B, T, H) each
        return self._solve(-F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h), state[0], lengths)


class MinLSTMCell(_ScanCell):
    r"""minLSTM step with normalised gates (length-independent scale).

    .. math::
        f_t = \sigma(W_f x_t + b_f), \quad i_t = \sigma(W_i x_t + b_i), \quad \tilde h_t = g(W_h x_t + b_h) \\
        f'_t = \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t}, \quad
        h_t = f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

    Gate order ``(f, i, h~)``: ``weight_ih (3H, F)``, ``bias_ih (3H)``; no recurrent weight, no cell state: the
    state is ``(h,)``.
    """

    kind: ClassVar[str] = "minlstm"
    gates: ClassVar[int] = 3
    keep_gate: ClassVar[tuple[int, float] | None] = (0, 1.0)
    input_gate: ClassVar[int | None] = 1
    forget_bias_ok: ClassVar[bool] = True
    gate_names: ClassVar[tuple[str, ...]] = ("f", "i")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        G = 3 * self.hidden_size
        return {"weight_ih": (G, self.input_size)} | ({"bias_ih": (G,)} if self.bias else {})

    @staticmethod
    def _diff(k_f: Tensor, k_i: Tensor) -> Tensor:
        # log(i / f); f' = sigmoid(-diff), i' = sigmoid(diff)
        return F.softplus(-k_f) - F.softplus(-k_i)

    def recur(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State]:
        h, new, _ = self.recur_gates(u, state, p)
        return h, new

    def recur_gates(self, u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        """The step, also returning the normalised gates ``f = f'``, ``i = i'`` and ``h~`` (candidate), each
        ``(B, H)``."""
        k_f, k_i, k_h = u.chunk(3, -1)
        diff = self._diff(k_f, k_i)
        f, i, cand = torch.sigmoid(-diff), torch.sigmoid(diff), g(k_h)
        h = f * state[0] + i * cand
        return h, (h,), {"f": f, "i": i, "h~": cand}

    def scan(self, x: Tensor, state: State, p: Params, lengths: Tensor | None) -> tuple[Tensor, State]:
        u = self.project(x, p)  # (B, T, 3H)
        fused = self._fused(u, state[0], lengths)
        if fused is not None:
            return fused
        k_f, k_i, k_h = u.chunk(3, -1)
        diff = self._diff(k_f, k_i)
        return self._solve(-F.softplus(diff), -F.softplus(-diff) + log_g(k_h), state[0], lengths)
