"""What a model's recurrent layer reads: its input, initial state and lengths, captured from the model's own call.

Every topology runs its :class:`~rnnkit.Recurrent` through ``forward``, so a forward pre-hook sees exactly what the
layer gets (after embeddings, input dropout in eval mode, a forecaster's relative transform ...). The inspector
then works on that layer, whatever surrounds it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import option
from ..recurrent import Recurrent

#: the model inputs :func:`call` accepts: one tensor, a tuple of positional arguments, or a dict of keywords
Inputs = Tensor | tuple | list | dict


@dataclass
class LayerCall:
    """One ``forward`` call of a :class:`Recurrent`: ``x (B, T, F)``, the initial state (or None), ``lengths``."""

    x: Tensor
    state: tuple[Tensor, ...] | None
    lengths: Tensor | None
    stepped: bool = False  # gathered from step() calls


class SteppedLayerError(ValueError):
    """A gradient with respect to a layer's inputs was asked of a layer the model steps one timestep at a time."""


def find_layer(model: nn.Module, name: str | None = None) -> Recurrent:
    """The recurrent layer to inspect: ``model`` itself, the submodule ``name`` (``"encoder"``, ``"net.rnn"``), or
    the first :class:`Recurrent` in ``model.modules()`` (an encoder-decoder's encoder)."""
    if name:
        names = [n for n, m in model.named_modules() if isinstance(m, Recurrent) and n]
        choose = f"choose {option('layer')} from {', '.join(names)}" if names else "the model is the layer itself"
        try:
            layer = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"the model has no recurrent layer {name!r} ({option('layer', name)}); {choose}") from None
        if not isinstance(layer, Recurrent):
            raise ValueError(
                f"{name!r} ({option('layer', name)}) is a {type(layer).__name__}, not a recurrent layer; {choose}"
            )
        return layer
    for module in model.modules():
        if isinstance(module, Recurrent):
            return module
    raise ValueError(f"{type(model).__name__} has no recurrent layer (rnnkit.Recurrent) to inspect")


def call(model: nn.Module, inputs: Inputs) -> Any:
    """``model(inputs)``, ``model(*inputs)`` or ``model(**inputs)``."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _bind(args: tuple, kwargs: dict) -> tuple[Tensor, Any, Any]:
    """``(x, state, lengths)`` of a call to ``Recurrent.forward(x, state=None, lengths=None)``."""
    names = ("x", "state", "lengths")
    values = dict(zip(names, args)) | {k: v for k, v in kwargs.items() if k in names}
    return values["x"], values.get("state"), values.get("lengths")


@contextlib.contextmanager
def capturing(layer: Recurrent, *, leaf: bool = False) -> Iterator[list[LayerCall]]:
    """Record every ``forward`` call of ``layer`` while the block runs (or, if it is only stepped, its ``step``
    calls as one call over their inputs, from the first step's state).

    With ``leaf`` the layer's input is swapped for a detached copy that requires grad (the recorded ``x``), so a
    gradient with respect to what the layer read at each step can be taken after the call; the values, and so
    everything the model computes, stay the same.
    """
    calls: list[LayerCall] = []

    def pre(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        x, state, lengths = _bind(args, kwargs)
        if leaf:
            x = x.detach().requires_grad_(True)
            if args:
                args = (x, *args[1:])
            else:
                kwargs = {**kwargs, "x": x}
        if isinstance(state, Tensor):
            state = (state,)
        lengths = None if lengths is None else torch.as_tensor(lengths)
        calls.append(LayerCall(x, None if state is None else tuple(state), lengths))
        return args, kwargs

    steps: list[tuple[Tensor, Any]] = []
    own_step = layer.step

    def step(x: Tensor, state: Any = None) -> Any:
        # decoders that attend step by step (Bahdanau) call step(), not forward(): keep its inputs too
        steps.append((x, state))
        return own_step(x, state)

    handle = layer.register_forward_pre_hook(pre, with_kwargs=True)
    layer.step = step  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        handle.remove()
        del layer.step  # the class's method again
    if not calls and steps:
        first = steps[0][1]
        state = (first,) if isinstance(first, Tensor) else first
        x = torch.stack([x for x, _ in steps], 1)
        calls.append(LayerCall(x, None if state is None else tuple(state), None, stepped=True))


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the block, then the model's own mode again."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def run_captured(model: nn.Module, inputs: Inputs, layer: Recurrent, *, leaf: bool = False) -> tuple[Any, LayerCall]:
    """Run ``model`` on ``inputs`` in eval mode; its output and the first call of ``layer`` it made."""
    with evaluating(model), capturing(layer, leaf=leaf) as calls:
        out = call(model, inputs)
    if not calls:
        raise ValueError(
            "the model never ran its recurrent layer on these inputs; inspect another layer or call it directly"
        )
    if leaf and calls[0].stepped:
        raise SteppedLayerError(
            "this layer is stepped one timestep at a time (a decoder attending step by step): its inputs are not "
            f"one tensor to take gradients for; inspect another layer ({option('layer', 'encoder')}, the default)"
        )
    return out, calls[0]
