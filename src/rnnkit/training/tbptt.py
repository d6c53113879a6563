"""Truncated backpropagation through time: run a long sequence in chunks of ``timestep`` steps.

The state is carried from chunk to chunk (so the forward pass equals one pass over the whole sequence) and detached
at each border (so gradients flow back at most ``timestep`` steps and memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

State = tuple[Tensor, ...]
StepFn = Callable[..., tuple[Tensor, State]]


def detach_state(state: State | Tensor | None) -> State | Tensor | None:
    """The same state cut from the graph (values kept, history dropped)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    return tuple(s.detach() for s in state)


@dataclass
class TBPTTChunk:
    """One chunk of a TBPTT pass.

    Attributes:
        index: chunk number, from 0.
        start, stop: the chunk covers timesteps ``[start, stop)`` of the full sequence.
        inputs: ``(B, stop - start, ...)`` slice of the input.
        output: what ``forward`` returned for the chunk, e.g. ``(B, stop - start, D*H)``.
        state: state after the chunk (still attached to this chunk's graph; the next chunk gets it detached).
        targets: the matching ``(B, stop - start, ...)`` slice of ``targets``, if given.
        lengths: ``(B,)`` valid steps of each sequence inside this chunk (``0..stop-start``), if given.
    """

    index: int
    start: int
    stop: int
    inputs: Tensor
    output: Tensor
    state: State
    targets: Tensor | None = None
    lengths: Tensor | None = None


def tbptt(
    forward: StepFn,
    x: Tensor,
    timestep: int,
    state: State | None = None,
    *,
    targets: Tensor | None = None,
    lengths: Tensor | None = None,
) -> Iterator[TBPTTChunk]:
    """Yield one :class:`TBPTTChunk` per ``timestep`` steps of ``x (B, T, ...)``.

    ``forward(x_chunk, state[, lengths=...]) -> (output, state)`` is usually a :class:`~rnnkit.Recurrent` or a model
    with the same call. A training loop computes the loss on ``chunk.output`` vs ``chunk.targets``, steps the
    optimizer, and moves on; the state carried into the next chunk is detached here, so gradients stop at the
    border. Without an optimizer step in between, concatenated outputs equal one pass over all of ``x``.
    """
    if timestep < 1:
        raise ValueError(f"tbptt: timestep must be >= 1, got {timestep}")
    if x.dim() < 2:
        raise ValueError(f"tbptt: expected x (B, T, ...), got {tuple(x.shape)}")
    T = x.shape[1]
    if targets is not None and targets.shape[:2] != x.shape[:2]:
        raise ValueError(f"tbptt: targets must start with (B, T) = {tuple(x.shape[:2])}, got {tuple(targets.shape)}")
    for index, start in enumerate(range(0, T, timestep)):
        stop = min(start + timestep, T)
        chunk_lengths = None
        kwargs = {}
        if lengths is not None:
            chunk_lengths = (torch.as_tensor(lengths) - start).clamp(0, stop - start)
            kwargs["lengths"] = chunk_lengths
        inputs = x[:, start:stop]
        output, new_state = forward(inputs, state, **kwargs)
        yield TBPTTChunk(
            index,
            start,
            stop,
            inputs,
            output,
            new_state,
            None if targets is None else targets[:, start:stop],
            chunk_lengths,
        )
        state = detach_state(new_state)  # type: ignore[assignment]
