"""Checkpoints: a directory of JSON and safetensors, nothing pickled.

    config.json          what to rebuild: task, model and data config, vocabulary, scaler, rnnkit version
    model.safetensors    the weights (shared/tied tensors handled by safetensors.torch.save_model)
    trainer_state.json   counters, history, schedule state, RNG states, optimizer hyper-parameters
    optimizer.safetensors optimizer tensors, the torch RNG state, a carried TBPTT state

A checkpoint is written to a temporary sibling directory (``.<name>.tmp-*``) and swapped into place: the previous
one is moved aside to ``.<name>.old``, the new one moved in, the old one removed. A crash at any point leaves a
complete checkpoint on disk: readers (:func:`find_checkpoint`) fall back to ``.<name>.old`` when ``<name>`` is
missing, and the next save cleans up. Tensors are written from CPU copies and load onto whatever device the model
is on.
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
from safetensors import SafetensorError
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
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # dropout on a GPU draws from these
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return meta, tensors


def set_rng_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> None:
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tensors.items() if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([v for _, v in cuda])


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _is_checkpoint(path: Path) -> bool:
    return (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def find_checkpoint(path: str | Path) -> Path | None:
    """The complete checkpoint directory that stands for ``path``: ``path`` itself, or the previous checkpoint kept
    beside it as ``.<name>.old`` when a save was interrupted between its two renames; None if there is neither."""
    path = Path(path)
    for candidate in (path, _old(path)):
        if _is_checkpoint(candidate):
            return candidate
    return None


class _Tensors(nn.Module):
    """A stand-in module whose ``state_dict`` is the given tensors, so ``save_model`` handles shared tensors."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        super().__init__()
        self.tensors = tensors

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:  # type: ignore[override]
        return self.tensors


def _cpu_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The model's tensors on the CPU; tied tensors stay one tensor (so they are stored once, as on the device)."""
    copies: dict[tuple, Tensor] = {}
    out: dict[str, Tensor] = {}
    for name, t in model.state_dict().items():
        if t.device.type == "cpu":
            out[name] = t.detach()
            continue
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
        if key not in copies:
            copies[key] = t.detach().to("cpu")
        out[name] = copies[key]
    return out


def _damaged(file: Path, kind: str, exc: Exception) -> ValueError:
    return ValueError(f"{file} is damaged or not {kind} ({str(exc).splitlines()[0]}); retrain or restore it")


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError (random bytes) are both ValueErrors
        raise _damaged(file, "JSON", exc) from None


def _load_tensors(file: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(file))
    except SafetensorError as exc:
        raise _damaged(file, "a safetensors file", exc) from None


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    *,
    trainer_state: dict[str, Any] | None = None,
    tensors: dict[str, Tensor] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (replacing ``path`` if it exists), from CPU copies of the tensors.
    Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = _old(path)
    try:
        (tmp / CONFIG).write_text(
            json.dumps({**config, "rnnkit_version": _version()}, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        save_model(_Tensors(_cpu_state_dict(model)), str(tmp / WEIGHTS))
        if trainer_state is not None:
            (tmp / TRAINER_STATE).write_text(json.dumps(trainer_state), encoding="utf-8")
        if tensors:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / OPTIMIZER))
        if path.exists():
            # `path` is complete (it only ever appears by a rename), so an `.old` beside it is a finished swap's
            # leftover; between the two renames below only `.old` exists, and find_checkpoint reads it then
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a save that was killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint directory, with a clear error if it is not one or is damaged."""
    found = find_checkpoint(path)
    if found is None:
        raise ValueError(f"{path} is not an rnnkit checkpoint (expected {CONFIG} and {WEIGHTS} in it)")
    return _read_json(found / CONFIG)


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load ``model.safetensors`` into ``model`` (onto the device its parameters are on); a shape or name mismatch
    names the tensors, a damaged file is named."""
    path = Path(path)
    found = find_checkpoint(path)
    if found is None:
        raise ValueError(f"{path} is not an rnnkit checkpoint (expected {CONFIG} and {WEIGHTS} in it)")
    try:
        missing, unexpected = load_model(model, str(found / WEIGHTS), strict=False)
    except SafetensorError as exc:
        raise _damaged(found / WEIGHTS, "a safetensors file", exc) from None
    except RuntimeError as exc:
        raise ValueError(f"{path}: the weights do not fit this model ({str(exc).splitlines()[0]})") from None
    if strict and (missing or unexpected):
        raise ValueError(
            f"{path}: the weights do not fit this model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )


def read_trainer_state(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]] | None:
    """``(trainer_state.json, optimizer tensors)`` of a checkpoint, or None if there is no checkpoint with trainer
    state at ``path``; damaged files are a ValueError naming the file."""
    found = find_checkpoint(path)
    if found is None or not (found / TRAINER_STATE).is_file():
        return None
    state = _read_json(found / TRAINER_STATE)
    tensors = _load_tensors(found / OPTIMIZER) if (found / OPTIMIZER).is_file() else {}
    return state, tensors
