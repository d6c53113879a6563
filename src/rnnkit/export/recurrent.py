"""A :class:`~rnnkit.Recurrent` in a form that exports to ONNX with dynamic batch and time.

Two ways to write the time loop into a graph, chosen per cell:

* **native**: standard RNN/LSTM/GRU cells become ONNX's own ``RNN``/``LSTM``/``GRU`` operators (one node per layer,
  both directions in it), emitted with ``torch.onnx.ops.symbolic_multi_out``. The weights are permuted once, here,
  from torch's gate order to ONNX's (LSTM ``ifgo -> iofc``, GRU ``rzn -> zrh``); a GRU node gets
  ``linear_before_reset=1``, which is what torch (and :class:`~rnnkit.GRUCell`) compute. ``lengths`` become the
  operator's ``sequence_lens``: outputs past each length are zero and the final state is the state at the last
  valid step, in both directions, as :class:`~rnnkit.Recurrent` promises.
* **scan**: every other cell (layer-norm LSTM, minGRU, minLSTM, custom cells) becomes an ONNX ``Scan`` whose body is
  the cell's own :meth:`~rnnkit.Cell.recur` (via ``torch.scan``), after its :meth:`~rnnkit.Cell.project` for all
  steps at once, so the equations stay single-sourced in ``cells/``. ``lengths`` hold the state past each end and
  zero the output, exactly as the reference unroll does; the backward direction reads each sequence reversed within
  its length.

Outside an export both classes simply run the layer itself (``layer(x, state, lengths)`` / ``layer.step``): the
graph forms exist only to be traced. Whether a graph computes what the layer computes is what
:mod:`rnnkit.export.verify` measures.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..cells import Cell, Params, State
from ..recurrent import Recurrent
from ..stack import walk_stack

#: torch's gate blocks in the order ONNX wants them
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn_tanh": (0,), "rnn_relu": (0,)}
ONNX_OP = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


def native_mode(layer: Recurrent) -> str | None:
    """The ONNX operator family that computes ``layer`` exactly (``"lstm"``, ``"gru"``, ``"rnn_tanh"``,
    ``"rnn_relu"``), or None when the cell has its own equations (then the graph scans its ``recur``)."""
    return layer.cells[0].fused_kernel


def no_step_message(where: str) -> str:
    return (
        f"{where}: a bidirectional layer has no step graph (its backward direction starts at the end of the "
        "sequence); export the whole-sequence graph only, or train a unidirectional model"
    )


class RecurrentGraph(nn.Module):
    """Export form of a :class:`~rnnkit.Recurrent`: ``forward(x (B, T, F), state, lengths)`` and ``step(x (B, F),
    state)`` with the layer's semantics; state is a tuple of ``(L*D, B, H)`` tensors (LSTM ``(h, c)``)."""

    def __init__(self, layer: Recurrent, native: bool = True) -> None:
        """``native=False`` writes a ``Scan`` even where an ONNX operator exists (to measure one against the
        other)."""
        super().__init__()
        self.layer = layer
        self.mode = native_mode(layer) if native else None
        L, D, H = layer.num_layers, layer.num_directions, layer.hidden_size
        self.L, self.D, self.H = L, D, H
        if self.mode is not None:
            # ONNX layouts: W (D, G*H, F), R (D, G*H, H), B (D, 2*G*H); fixed once, stored as graph constants
            for k in range(L):
                w, r, b = [], [], []
                for d in range(D):
                    p = {n: t.detach() for n, t in layer.cell_params(k * D + d).items()}
                    w.append(self._permute(p["weight_ih"]))
                    r.append(self._permute(p["weight_hh"]))
                    if layer.bias:
                        b.append(torch.cat([self._permute(p["bias_ih"]), self._permute(p["bias_hh"])]))
                self.register_buffer(f"W{k}", torch.stack(w).clone(), persistent=False)
                self.register_buffer(f"R{k}", torch.stack(r).clone(), persistent=False)
                self.register_buffer(f"B{k}", torch.stack(b).clone() if b else None, persistent=False)

    def _permute(self, t: Tensor) -> Tensor:
        H = self.layer.hidden_size
        return torch.cat([t[i * H : (i + 1) * H] for i in GATE_ORDER[self.mode]])  # type: ignore[index]

    # ---- the two calls ---------------------------------------------------------------------------------------
    def forward(self, x: Tensor, state: State | None = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """``x (B, T, F)``, ``state`` tuple of ``(L*D, B, H)`` (zeros when None), ``lengths (B,)`` in ``1..T`` or
        None -> ``(output (B, T, D*H), state)``."""
        if not torch.onnx.is_in_onnx_export():
            return self.layer(x, state, lengths)
        if state is None:
            state = self.layer.initial_state(x.shape[0], like=x)
        if self.mode is not None:
            out, new = self._native(x.transpose(0, 1), state, lengths)
            return out.transpose(0, 1), new
        return self._scan(x, state, lengths)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One timestep of the whole stack: ``x (B, F)`` -> ``(y (B, H), state)``."""
        if self.D == 2:
            raise ValueError(no_step_message("export"))
        if not torch.onnx.is_in_onnx_export():
            return self.layer.step(x, state)
        if self.mode is not None:
            out, new = self._native(x.unsqueeze(0), state, None)
            return out[0], new
        new: list[State] = []
        y = x
        for k in range(self.L):
            y, s = self.layer.cells[k].step(y, tuple(s[k] for s in state), self.layer.cell_params(k))
            new.append(s)
        return y, tuple(torch.stack([s[j] for s in new], 0) for j in range(self.layer.num_states))

    # ---- native ONNX operators -------------------------------------------------------------------------------
    def _native(self, xt: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """``xt (T, B, F)`` time-major through one ONNX node per layer -> ``((T, B, D*H), state)``."""
        mode, L, D, H = self.mode, self.L, self.D, self.H
        T, B = xt.shape[0], xt.shape[1]
        seq = None if lengths is None else lengths.to(torch.int32)
        attrs: dict[str, int | str | list[str]] = {
            "hidden_size": H,
            "direction": "bidirectional" if D == 2 else "forward",
        }
        if mode == "gru":
            attrs["linear_before_reset"] = 1  # torch's GRU: r gates (W_hn h + b_hn); ONNX's default does not
        if mode in ("rnn_tanh", "rnn_relu"):
            attrs["activations"] = ["Tanh" if mode == "rnn_tanh" else "Relu"] * D
        n_out = 1 + len(state)
        finals: list[list[Tensor]] = [[] for _ in state]
        for k in range(L):
            ins = [xt, getattr(self, f"W{k}"), getattr(self, f"R{k}"), getattr(self, f"B{k}"), seq]
            ins += [s[k * D : (k + 1) * D] for s in state]  # initial_h, initial_c
            outs = torch.onnx.ops.symbolic_multi_out(
                ONNX_OP[mode],  # type: ignore[index]
                ins,
                attrs,
                dtypes=[xt.dtype] * n_out,
                shapes=[(T, D, B, H)] + [(D, B, H)] * (n_out - 1),
            )
            xt = outs[0].permute(0, 2, 1, 3).reshape(T, B, D * H)  # (T, D, B, H) -> (T, B, D*H)
            for j in range(len(state)):
                finals[j].append(outs[1 + j])
        return xt, tuple(torch.cat(f, 0) for f in finals)

    # ---- Scan over the cell's own equations ------------------------------------------------------------------
    def _scan(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        from torch._higher_order_ops.scan import scan

        T = x.shape[1]
        valid = None
        if lengths is not None:
            valid = (torch.arange(T, device=x.device)[:, None] < lengths[None, :]).unsqueeze(-1)  # (T, B, 1)

        def direction(cell: Cell, p: Params, inp: Tensor, s0: State) -> tuple[dict[str, Tensor], State]:
            u = cell.project(inp, p).transpose(0, 1)  # (T, B, G*H): the input half for every step at once

            def body(carry: list[Tensor], xs: tuple[Tensor, ...]) -> tuple[list[Tensor], Tensor]:
                y, new = cell.recur(xs[0], tuple(carry), p)
                if len(xs) == 1:  # scan's outputs must not alias each other or the carry
                    return [n.clone() for n in new], y.clone()
                m = xs[1]  # (B, 1): hold the state and zero the output past each sequence's end
                return [torch.where(m, n, c) for n, c in zip(new, carry)], y * m

            last, ys = scan(body, list(s0), (u,) if valid is None else (u, valid))
            return {"y": ys.transpose(0, 1)}, tuple(last)  # (B, T, H)

        out, final, _ = walk_stack(self.layer, x, state, lengths, direction)
        return out, final
