"""A stacked, possibly bidirectional recurrent layer's rule for time, written once: layer by layer, every direction
reads the layer below (a backward direction reads each sequence reversed within its length), and the directions'
outputs are put side by side for the next layer.

The ONNX export's ``Scan`` graphs (:mod:`rnnkit.export.recurrent`) and the inspector's traces
(:mod:`rnnkit.inspect.traces`) walk a :class:`~rnnkit.Recurrent` with :func:`walk_stack`, each running its own
unroll per direction; :class:`~rnnkit.Recurrent`'s reference path walks it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .cells import Cell, Params, State
from .recurrent import reverse_padded

if TYPE_CHECKING:
    from .recurrent import Recurrent

#: ``(cell, params, inputs (B, T, F), state) -> (outputs by name, each (B, T, ...), final state)``; ``"y"`` is the
#: direction's output, what the layer above reads
Direction = Callable[[Cell, Params, Tensor, State], tuple[dict[str, Tensor], State]]


def walk_stack(
    layer: Recurrent, x: Tensor, state: State, lengths: Tensor | None, run: Direction
) -> tuple[Tensor, State, list[dict[str, Tensor]]]:
    """Run ``run`` for every layer ``k`` and direction ``d`` of ``layer`` on ``x (B, T, F)`` from ``state`` (a tuple
    of ``(L*D, B, H)``), with ``lengths (B,)`` or None.

    Returns the top layer's output ``(B, T, D*H)``, the final state (a tuple of ``(L*D, B, H)``, index ``k*D + d``)
    and, per index, every output of ``run`` back in the input's time order (a backward direction's outputs are
    un-reversed within each length).
    """
    D = layer.num_directions
    finals: list[list[Tensor]] = [[] for _ in state]
    per_index: list[dict[str, Tensor]] = []
    layer_in = x
    for k in range(layer.num_layers):
        ys = []
        for d in range(D):
            idx = k * D + d
            inp = reverse_padded(layer_in, lengths) if d else layer_in
            outs, last = run(layer.cells[idx], layer.cell_params(idx), inp, tuple(s[idx] for s in state))
            if d:
                outs = {name: reverse_padded(v, lengths) for name, v in outs.items()}
            per_index.append(outs)
            ys.append(outs["y"])
            for j, s in enumerate(last):
                finals[j].append(s)
        layer_in = torch.cat(ys, -1) if D == 2 else ys[0]
    return layer_in, tuple(torch.stack(f, 0) for f in finals), per_index
