"""Per-column affine scaling fitted on training rows, and its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor


@dataclass
class Scaler:
    """Per-column affine scaling ``(x - shift) / scale``, fitted on training rows; JSON round-trips."""

    kind: str
    columns: list[str]
    shift: list[float]
    scale: list[float]

    @classmethod
    def fit(cls, kind: str, frame: pd.DataFrame) -> Scaler:
        values = frame.to_numpy(dtype=np.float64)
        if kind == "standard":
            shift, scale = values.mean(0), values.std(0)
        elif kind == "minmax":
            shift, scale = values.min(0), values.max(0) - values.min(0)
        else:
            shift, scale = np.zeros(values.shape[1]), np.ones(values.shape[1])
        scale = np.where(scale > 0, scale, 1.0)  # a constant column stays as it is
        return cls(kind, list(frame.columns), shift.tolist(), scale.tolist())

    def transform(self, values: np.ndarray, columns: list[str] | None = None) -> np.ndarray:
        idx = self._index(columns)
        return (values - np.asarray(self.shift)[idx]) / np.asarray(self.scale)[idx]

    def inverse(self, values: np.ndarray | Tensor, columns: list[str] | None = None) -> np.ndarray | Tensor:
        idx = self._index(columns)
        shift, scale = np.asarray(self.shift)[idx], np.asarray(self.scale)[idx]
        if isinstance(values, Tensor):
            return values * torch.as_tensor(scale, dtype=values.dtype) + torch.as_tensor(shift, dtype=values.dtype)
        return values * scale + shift

    def _index(self, columns: list[str] | None) -> list[int]:
        if columns is None:
            return list(range(len(self.columns)))
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise ValueError(f"Scaler: columns {missing} were not fitted (fitted: {self.columns})")
        return [self.columns.index(c) for c in columns]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "shift": self.shift, "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scaler:
        return cls(data["kind"], list(data["columns"]), list(data["shift"]), list(data["scale"]))


def save_scaler(scaler: Scaler, path: str | Path) -> None:
    Path(path).write_text(json.dumps(scaler.to_json()))


def load_scaler(path: str | Path) -> Scaler:
    return Scaler.from_json(json.loads(Path(path).read_text()))
