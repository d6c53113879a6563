"""Hidden-state traces: the state of every layer and direction at every timestep, and the gates that made it.

The values come from the model's own parameters and the cells' own equations: the layer's input is captured from
the model's call (:mod:`.capture`) and unrolled with each cell's :meth:`~rnnkit.Cell.recur_gates` (which is what
``recur`` runs), with the layer's rules for time: backward directions read each sequence reversed within its
length, states are held and outputs are zero past each length. The tests hold the trace equal to the layer's own
(fused, scanned or C++) outputs and final states.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..cells import Cell, Params, State
from ..recurrent import Recurrent
from ..stack import walk_stack
from .capture import Inputs, find_layer, run_captured

StepFn = Callable[[Tensor, State, Params], tuple[Tensor, State, dict[str, Tensor]]]


@dataclass
class Trace:
    """Per (layer, direction) at every timestep of ``B`` sequences of ``T`` steps.

    Index ``k * D + d`` (layer ``k``, direction ``d``, as torch.nn orders states). All tensors are in the input's
    time order (a backward direction's value at ``t`` is its state after reading steps ``t .. n-1``) and zero past
    each sequence's length.

    Attributes:
        cell: the cell's registry name.
        num_layers, num_directions, hidden_size: ``L``, ``D``, ``H``.
        hidden: ``h`` per index, each ``(B, T, H)``.
        cell_state: ``c`` per index for LSTM-family cells, else None.
        gates: per index, the cell's inner activations by name, each ``(B, T, H)`` (LSTM ``i f g o``, GRU
            ``r z n``, minGRU ``z h~``); ``gate_names`` are the sigmoid gates among them (values in ``[0, 1]``).
        gate_names: see ``gates``.
        inputs: ``(B, T, F)`` what the layer read (embeddings, features).
        lengths: ``(B,)`` valid steps, or None (all ``T``).
        initial_state: the state before the first step, a tuple of ``(L*D, B, H)``.
        final_state: the state after each sequence's last valid step, a tuple of ``(L*D, B, H)``.
    """

    cell: str
    num_layers: int
    num_directions: int
    hidden_size: int
    hidden: list[Tensor]
    cell_state: list[Tensor] | None
    gates: list[dict[str, Tensor]]
    gate_names: tuple[str, ...]
    inputs: Tensor
    lengths: Tensor | None
    initial_state: State
    final_state: State
    mask: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        B, T = self.inputs.shape[:2]
        n = torch.full((B,), T) if self.lengths is None else self.lengths.cpu()
        self.mask = torch.arange(T)[None, :] < n[:, None]  # (B, T) valid steps

    def index(self, layer: int = -1, direction: int = 0) -> int:
        """The position of (``layer``, ``direction``) in the per-index lists; ``layer`` may be negative."""
        k = layer % self.num_layers if -self.num_layers <= layer < self.num_layers else None
        if k is None or direction not in range(self.num_directions):
            raise ValueError(
                f"no layer {layer}, direction {direction}: the trace has {self.num_layers} layer(s) and "
                f"{self.num_directions} direction(s)"
            )
        return k * self.num_directions + direction

    def h(self, layer: int = -1, direction: int = 0) -> Tensor:
        """Hidden state ``(B, T, H)`` of one layer and direction."""
        return self.hidden[self.index(layer, direction)]

    def c(self, layer: int = -1, direction: int = 0) -> Tensor:
        """Cell state ``(B, T, H)`` (LSTM-family cells)."""
        if self.cell_state is None:
            raise ValueError(f"a {self.cell} cell has no cell state; use h()")
        return self.cell_state[self.index(layer, direction)]

    def gate(self, name: str, layer: int = -1, direction: int = 0) -> Tensor:
        """Activation ``name`` (``"f"``, ``"z"`` ...) ``(B, T, H)`` of one layer and direction."""
        found = self.gates[self.index(layer, direction)]
        if name not in found:
            raise ValueError(f"a {self.cell} cell has no gate {name!r}; it has {sorted(found) or 'none'}")
        return found[name]

    def layer_output(self, layer: int = -1) -> Tensor:
        """``(B, T, D*H)``: a layer's directions side by side, as the next layer (or the model) reads them."""
        return torch.cat([self.h(layer, d) for d in range(self.num_directions)], -1)

    @property
    def output(self) -> Tensor:
        """``(B, T, D*H)``: the top layer's output, what ``Recurrent.forward`` returns."""
        return self.layer_output(-1)


def _step_fn(cell: Cell) -> StepFn:
    """``cell.recur_gates``, unless a subclass redefined ``recur`` below it (then those gates would not be the
    ones its step computes): then ``recur`` itself, without gates."""
    mro = type(cell).__mro__
    owner = {name: next(c for c in mro if name in vars(c)) for name in ("recur", "recur_gates")}
    if owner["recur_gates"] is Cell or issubclass(owner["recur_gates"], owner["recur"]):
        return cell.recur_gates
    warnings.warn(
        f"{type(cell).__name__} redefines recur() but not recur_gates(); tracing its states without gates",
        stacklevel=3,
    )

    def plain(u: Tensor, state: State, p: Params) -> tuple[Tensor, State, dict[str, Tensor]]:
        y, new = cell.recur(u, state, p)
        return y, new, {}

    return plain


#: prefix of the gates among the per-direction outputs of :func:`trace_layer`'s walk
GATE = "gate:"


def unroll_traced(
    cell: Cell, p: Params, u: Tensor, state: State, lengths: Tensor | None
) -> tuple[list[Tensor], dict[str, Tensor], State]:
    """Loop the cell's step over projected inputs ``u (B, T, G*H)`` as ``Recurrent``'s reference path does.

    Returns every state tensor per step (``[(B, T, H)]`` in state order), the activations (``{name: (B, T, H)}``),
    both zero past each length, and the state after each sequence's last valid step.
    """
    step = _step_fn(cell)
    B, T = u.shape[:2]
    valid = None
    if lengths is not None:
        valid = (torch.arange(T, device=u.device)[:, None] < lengths.to(u.device)[None, :]).unsqueeze(-1)  # (T, B, 1)
    states: list[list[Tensor]] = [[] for _ in state]
    acts: dict[str, list[Tensor]] = {}
    for t in range(T):
        _, new, gates = step(u[:, t], state, p)
        if valid is not None:
            m = valid[t]
            state = tuple(torch.where(m, n, s) for n, s in zip(new, state))
            new = tuple(n * m for n in new)
            gates = {k: v * m for k, v in gates.items()}
        else:
            state = new
        for j, s in enumerate(new):
            states[j].append(s)
        for k, v in gates.items():
            acts.setdefault(k, []).append(v)
    empty = u.new_zeros(B, 0, cell.hidden_size)
    stack = lambda xs: torch.stack(xs, 1) if xs else empty  # noqa: E731
    return [stack(s) for s in states], {k: stack(v) for k, v in acts.items()}, state


def trace_layer(
    layer: Recurrent, x: Tensor, state: State | Tensor | None = None, lengths: Tensor | None = None
) -> Trace:
    """Trace ``layer`` on ``x (B, T, F)`` from ``state`` (zeros if None) with ``lengths (B,)``, in eval mode."""
    if x.dim() != 3 or x.shape[-1] != layer.input_size:
        raise ValueError(f"trace: expected input (B, T, {layer.input_size}), got {tuple(x.shape)}")
    B = x.shape[0]
    if isinstance(state, Tensor):
        state = (state,)
    state = layer.initial_state(B, like=x) if state is None else tuple(state)
    lengths = None if lengths is None else torch.as_tensor(lengths).to("cpu", torch.int64)

    def direction(cell: Cell, p: Params, inp: Tensor, s0: State) -> tuple[dict[str, Tensor], State]:
        seq, acts, last = unroll_traced(cell, p, cell.project(inp, p), s0, lengths)
        cell_state = {"c": seq[1]} if len(seq) > 1 else {}
        return {"y": seq[0], **cell_state, **{GATE + k: v for k, v in acts.items()}}, last

    with torch.no_grad():
        _, finals, per_index = walk_stack(layer, x, state, lengths, direction)
    hidden = [outs["y"] for outs in per_index]
    cstate = [outs["c"] for outs in per_index if "c" in outs]
    gates = [{k[len(GATE) :]: v for k, v in outs.items() if k.startswith(GATE)} for outs in per_index]
    first = layer.cells[0]
    return Trace(
        cell=layer.cell_kind,
        num_layers=layer.num_layers,
        num_directions=layer.num_directions,
        hidden_size=layer.hidden_size,
        hidden=hidden,
        cell_state=cstate or None,
        gates=gates,
        gate_names=tuple(first.gate_names),
        inputs=x.detach(),
        lengths=lengths,
        initial_state=tuple(s.detach() for s in state),
        final_state=finals,
    )


def trace(model: nn.Module, inputs: Inputs, *, layer: str | None = None) -> Trace:
    """Hidden states (and cell states, gates) of a model's recurrent layer at every timestep.

    Args:
        model: a :class:`~rnnkit.Recurrent` or any model around one (the five topologies, a task's ``.model``).
        inputs: what the model is called with: a tensor, a tuple of positional arguments (``(x, lengths)`` for a
            many-to-one model, ``(src, src_lengths, tgt_in)`` for an encoder-decoder) or a dict of keywords.
        layer: the submodule to trace (``"encoder"``, ``"decoder"``); default: the first recurrent layer.

    Returns:
        A :class:`Trace` of the layer on what the model fed it, equal to the layer's own outputs.
    """
    rnn = find_layer(model, layer)
    with torch.no_grad():
        _, got = run_captured(model, inputs, rnn)
    return trace_layer(rnn, got.x.detach(), got.state, got.lengths)
