"""rnnkit's C++ CPU kernels (``csrc/``), compiled on first use and cached per machine.

The kernels are the fast paths of cells that PyTorch has no fused kernel for (layer-norm LSTM; the linear
recurrence of minGRU/minLSTM). They are built with the machine's C++ compiler through
``torch.utils.cpp_extension`` into ``~/.cache/torch_extensions`` (about a minute, once). Tuned for the CPU that
builds them, so the cache name carries a fingerprint of that CPU. Without a compiler, or with ``RNNKIT_NO_EXT=1``,
:func:`load` returns ``None`` and every caller uses its pure-PyTorch path: same numbers, slower.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import warnings
from pathlib import Path
from typing import Any

_CSRC = Path(__file__).resolve().parent / "csrc"
_SOURCES = ("bindings.cpp", "lnlstm.cpp", "scan.cpp")  # headers: fastmath, kernels, step_linear, workspace


def _cpu_fingerprint() -> str:
    text = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features", "model name")):
                text += line
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


@functools.cache
def load() -> Any | None:
    """The compiled kernel module, or ``None`` if it cannot be built here (warns once)."""
    if os.environ.get("RNNKIT_NO_EXT"):
        return None
    try:
        from torch.utils.cpp_extension import load as build

        if shutil.which("ninja") is None:  # the `ninja` wheel ships the binary; a non-activated venv hides it
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        sources = [str(_CSRC / s) for s in _SOURCES]
        name = f"rnnkit_kernels_{_cpu_fingerprint()}"
        flags = ["-O3", "-fopenmp-simd"]
        try:
            return build(name=name, sources=sources, extra_cflags=[*flags, "-march=native"], verbose=False)
        except Exception:  # a compiler without -march=native: build for the generic target
            return build(name=name + "_generic", sources=sources, extra_cflags=flags, verbose=False)
    except Exception as exc:  # no compiler, headers or ninja: stay correct, just slower
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        warnings.warn(
            f"rnnkit: could not build the CPU kernels ({reason}); using the slower pure-PyTorch "
            "paths. Install a C++ compiler (g++) to get the fast ones.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
