"""Mixed precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` for a :class:`~rnnkit.Recurrent`, the Trainer
(``TrainerConfig.precision``, ``--precision``) and so every task.

Lower precision is torch's autocast: matrix products run in bf16/fp16 while parameters, optimizer state and the
loss stay float32. Under it, torch's own LSTM/RNN kernels run in bf16 (oneDNN), and rnnkit's C++ kernels take their
input projections from autocast and keep the recurrence itself in float32 (:func:`kernel_float`): a long
recurrence accumulates rounding step after step, and the per-step products are small. fp16 needs a device with
fast fp16 and gradient scaling (CUDA); a CPU has bf16 (AVX512-BF16/AMX) and is refused fp16 with that hint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
LOW = (torch.bfloat16, torch.float16)


def check_precision(precision: str, device: torch.device | str | None = None, *, name: str = "precision") -> None:
    """Raise a ValueError naming the fix if ``precision`` is unknown or ``device`` cannot run it."""
    if precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if device is None:
        return
    kind = torch.device(device).type
    if precision == "fp16" and kind == "cpu":
        raise ValueError(f"{name} fp16 needs a CUDA device (fp16 on a CPU is slow and unscaled); use bf16 on a CPU")
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"{name} bf16: this GPU has no bf16; use fp16 (with gradient scaling) or fp32")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the block in ``precision`` on ``device`` (torch.autocast; nothing for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=DTYPES[precision]):
        yield


def autocast_dtype(t: Tensor) -> torch.dtype | None:
    """The lower precision autocast is running in on ``t``'s device, or None when it is off there."""
    kind = t.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None


def accepts(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x`` may meet parameters of ``weight``'s dtype: the same dtype, or autocast's on this device."""
    return x.dtype == weight.dtype or (x.device == weight.device and x.dtype == autocast_dtype(x))


def kernel_float(*tensors: Tensor) -> list[Tensor]:
    """The tensors a float32/float64 C++ kernel can take: bf16/fp16 ones as float32 (differentiably)."""
    return [t.float() if t.dtype in LOW else t for t in tensors]
