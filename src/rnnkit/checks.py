"""Input checks for Recurrent: every message names what was expected and what arrived."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .precision import accepts, autocast_dtype

if TYPE_CHECKING:
    from .recurrent import Recurrent


def _name(layer: Recurrent) -> str:
    return f"Recurrent(input_size={layer.input_size})"


def _mixed(s: Tensor, x: Tensor) -> bool:
    """Under autocast a state and an input may differ: each float32 or autocast's lower precision."""
    low = autocast_dtype(x)
    return low is not None and {s.dtype, x.dtype} <= {low, torch.float32}


def check_finite(name: str, what: str, t: Tensor) -> None:
    """Raise if ``t`` holds NaN or inf, saying where the first one is."""
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name}: {what} holds NaN/inf (first at index {first}); clean or impute the data first")


def _bad_shape(layer: Recurrent, x: object, time_axis: bool) -> None:
    name, F = _name(layer), layer.input_size
    want = f"(B, T, {F})" if time_axis else f"(B, {F})"
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a tensor {want}, got {type(x).__name__}")
    hint = " (step() takes one timestep; use forward() for sequences)" if not time_axis and x.dim() == 3 else ""
    if time_axis and x.dim() == 2:
        hint = " (add a batch axis with x.unsqueeze(0), or use step() for one timestep)"
    raise ValueError(f"{name}: expected input {want}, got {tuple(x.shape)}{hint}")


def check_input(layer: Recurrent, x: Tensor, weight: Tensor, *, time_axis: bool) -> None:
    """``x`` must be ``(B, T, F)`` (or ``(B, F)`` for ``step``), floating, of the parameters' dtype and device (or of
    autocast's lower precision, inside ``torch.autocast``)."""
    F = layer.input_size
    if not isinstance(x, Tensor) or x.dim() != (3 if time_axis else 2) or x.shape[-1] != F:
        _bad_shape(layer, x, time_axis)
    if not x.is_floating_point():
        raise ValueError(
            f"{_name(layer)}: expected a floating-point input, got dtype {x.dtype} (convert with x.float())"
        )
    if (x.dtype != weight.dtype or x.device != weight.device) and not accepts(x, weight):
        raise ValueError(
            f"{_name(layer)}: input is {x.dtype} on {x.device} but the parameters are {weight.dtype} on "
            f"{weight.device}; move one to the other (layer.to(x) or x.to(weight))"
        )
    if time_axis and x.shape[1] == 0:
        raise ValueError(f"{_name(layer)}: expected at least one timestep, got input {tuple(x.shape)}")
    if layer.check_finite:
        check_finite(_name(layer), "input", x)


def check_lengths(layer: Recurrent, lengths: Tensor | Sequence[int] | None, B: int, T: int) -> Tensor | None:
    """``lengths`` must be ``(B,)`` integers in ``0..T``. Returns a CPU int64 tensor, or None when all are ``T``."""
    if lengths is None:
        return None
    name = _name(layer)
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: lengths must be a (B,) tensor or list of ints, got {lengths!r}") from None
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"{name}: lengths must be integers, got dtype {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"{name}: lengths must have shape ({B},) to match the batch, got {tuple(lengths.shape)}")
    lengths = lengths.to("cpu", torch.int64)
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 0 or hi > T:
        raise ValueError(f"{name}: lengths must be in 0..{T} (the input has T={T}), got min {lo}, max {hi}")
    return None if lo == T else lengths


def check_state(layer: Recurrent, state: object, B: int, x: Tensor) -> tuple[Tensor, ...]:
    """``state`` must be a tuple of ``num_states`` tensors, each ``(L*D, B, H)``, like ``x`` in dtype and device."""
    n = layer.num_states
    if isinstance(state, Tensor) and n == 1:
        state = (state,)
    if not isinstance(state, (tuple, list)) or len(state) != n or not all(isinstance(s, Tensor) for s in state):
        kinds = "(h, c)" if n == 2 else "(h,)"
        got = type(state).__name__ + (f" of {len(state)}" if isinstance(state, (tuple, list)) else "")
        raise ValueError(f"{_name(layer)}: state for {layer.cell_kind} must be a tuple {kinds} of tensors, got {got}")
    want = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    dtype, device = x.dtype, x.device
    for label, s in zip(("h", "c"), state):
        if s.shape != want:
            raise ValueError(f"{_name(layer)}: state {label} must be (L*D, B, H) = {want}, got {tuple(s.shape)}")
        if (s.dtype != dtype or s.device != device) and not (s.device == device and _mixed(s, x)):
            raise ValueError(
                f"{_name(layer)}: state {label} is {s.dtype} on {s.device}, the input is {x.dtype} on {x.device}"
            )
        if layer.check_finite:
            check_finite(_name(layer), f"state {label}", s)
    return tuple(state)
