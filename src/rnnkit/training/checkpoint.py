"""Checkpoints: a directory of JSON and safetensors, nothing pickled.

    config.json          what to rebuild: task, model and data config, vocabulary, scaler, rnnkit version
    model.safetensors    the weights (shared/tied tensors handled by safetensors.torch.save_model)
    trainer_state.json   counters, history, schedule state, RNG states, optimizer hyper-parameters
    optimizer.safetensors optimizer tensors, the torch RNG state, a carried TBPTT state

A checkpoint is written to a temporary sibling directory and moved into place, so an interruption never leaves a
half-written checkpoint where a good one was.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import Tensor, nn

CONFIG, WEIGHTS, TRAINER_STATE, OPTIMIZER = (
    "config.json",
    "model.safetensors",
    "trainer_state.json",
    "optimizer.safetensors",
)


def _version() -> str:
    from .. import __version__

    return __version__


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimizer's state as flat tensors plus JSON metadata (hyper-parameters, non-tensor state)."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Python, NumPy and torch RNG states (JSON part, tensor part)."""
    np_state = np.random.get_state()
    py = random.getstate()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return meta, {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64))}


def set_rng_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> None:
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    *,
    trainer_state: dict[str, Any] | None = None,
    tensors: dict[str, Tensor] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (replacing ``path`` if it exists). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / CONFIG).write_text(json.dumps({**config, "rnnkit_version": _version()}, indent=2, ensure_ascii=False))
        save_model(model, str(tmp / WEIGHTS))
        if trainer_state is not None:
            (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state))
        if tensors:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / OPTIMIZER))
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint directory, with a clear error if it is not one."""
    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise ValueError(f"{path} is not an rnnkit checkpoint (expected {CONFIG} and {WEIGHTS} in it)")
    return json.loads((path / CONFIG).read_text())


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load ``model.safetensors`` into ``model``; a shape or name mismatch names the tensors."""
    path = Path(path)
    try:
        missing, unexpected = load_model(model, str(path / WEIGHTS), strict=False)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit this model ({str(exc).splitlines()[0]})") from None
    if strict and (missing or unexpected):
        raise ValueError(
            f"{path}: the weights do not fit this model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )


def read_trainer_state(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]] | None:
    """``(trainer_state.json, optimizer tensors)`` of a checkpoint, or None if it has no trainer state."""
    path = Path(path)
    if not (path / TRAINER_STATE).is_file():
        return None
    state = json.loads((path / TRAINER_STATE).read_text())
    tensors = load_file(str(path / OPTIMIZER)) if (path / OPTIMIZER).is_file() else {}
    return state, tensors
