"""Devices: ``auto`` picks CUDA when present, else the CPU; batches of any nesting move with :func:`to_device`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` as a
    :class:`torch.device`; asking for a device this machine lacks is an error that says what it has."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = name.split(":", 1)[0]
    if kind not in DEVICES:
        raise ValueError(f"unknown device {name!r}; expected one of {list(DEVICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but this machine has no CUDA GPU; use 'cpu' or 'auto'")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} was asked for but MPS is not available here; use 'cpu' or 'auto'")
    return torch.device(name)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor in it (tuples, lists, dicts, nested) on ``device``; other values unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True) if obj.device != device else obj
    if isinstance(obj, tuple):
        return (
            type(obj)(*(to_device(v, device) for v in obj))
            if hasattr(obj, "_fields")
            else tuple(to_device(v, device) for v in obj)
        )
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj
