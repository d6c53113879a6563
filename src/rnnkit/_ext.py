"""rnnkit's C++ CPU kernels (``csrc/``), compiled on first use into a cache shared by every checkout and install.

The kernels are the fast paths of cells that PyTorch has no fused kernel for (layer-norm LSTM; the linear
recurrence of minGRU/minLSTM). They are built with the machine's C++ compiler through
``torch.utils.cpp_extension`` (about a minute, once) into ``$TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions``), in a directory named by :func:`cache_key`: a hash of every source file's bytes, the
torch version, the Python ABI, the CPU (the build is tuned with ``-march=native``) and the compiler flags. Two
checkouts with the same sources share one build; different sources never share one.

Environment:

* ``RNNKIT_NO_EXT=1``: skip the kernels; every caller uses its pure-PyTorch path (same numbers, slower).
* ``RNNKIT_REQUIRE_KERNELS=1``: a failed build raises instead of warning and falling back (CI sets it).
* ``RNNKIT_KERNEL_LOCK_TIMEOUT``: seconds to wait for another process's build (default 600), then give up with an
  error naming the lock file.

Without a compiler :func:`load` warns once and returns ``None``; :func:`status` says what happened and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sysconfig
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock, so only torch's own lock file, waited on with a timeout
    fcntl = None  # type: ignore[assignment]

_CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE_SUFFIXES = (".cpp", ".h")  # the same set pyproject.toml ships as package data
# Tried in order: tuned for this CPU, then the generic target for compilers without -march=native.
_FLAGS = {"native": ("-O3", "-fopenmp-simd", "-march=native"), "generic": ("-O3", "-fopenmp-simd")}
_MARKER = "rnnkit-built.json"  # written after a build succeeded; its presence means "import, don't build"
_LOCK = "rnnkit.lock"  # our flock; torch's own FileBaton is the file "lock" next to it
DEFAULT_LOCK_TIMEOUT = 600.0
_LIB_EXT = ".pyd" if os.name == "nt" else ".so"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def kernels_required() -> bool:
    """Whether ``RNNKIT_REQUIRE_KERNELS`` is set: a build that fails is then an error, not a slow fallback."""
    return _flag("RNNKIT_REQUIRE_KERNELS")


def lock_timeout() -> float:
    """Seconds to wait for another process's build: ``RNNKIT_KERNEL_LOCK_TIMEOUT``, default 600."""
    raw = os.environ.get("RNNKIT_KERNEL_LOCK_TIMEOUT", "").strip()
    try:
        return float(raw) if raw else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        raise ValueError(f"RNNKIT_KERNEL_LOCK_TIMEOUT must be a number of seconds, got {raw!r}") from None


def _cpu_fingerprint() -> str:
    text = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features", "model name")):
                text += line
    except OSError:
        pass
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def source_files(csrc: Path = _CSRC) -> list[Path]:
    """Every C++ source and header in ``csrc``, sorted by name."""
    files = sorted(p for p in Path(csrc).iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES)
    if not any(p.suffix == ".cpp" for p in files):
        raise FileNotFoundError(f"no C++ sources in {csrc}")
    return files


def cache_key(
    csrc: Path = _CSRC,
    *,
    torch_version: str | None = None,
    cpu: str | None = None,
    flags: Sequence[str] = _FLAGS["native"],
) -> str:
    """A 16-hex-digit key for one build: the name and bytes of every file in :func:`source_files`, the torch
    version, the Python ABI, the CPU fingerprint and the compiler flags. Where the sources live does not count."""
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    digest = hashlib.sha256()
    for part in (torch_version, sysconfig.get_config_var("EXT_SUFFIX") or "", cpu or _cpu_fingerprint(), *flags):
        digest.update(part.encode() + b"\0")
    for path in source_files(csrc):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def extensions_root() -> Path:
    """Where torch keeps JIT-built extensions: ``$TORCH_EXTENSIONS_DIR`` or torch's per-user cache directory."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if root:
        return Path(root)
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root())


def build_directory(variant: str = "native", csrc: Path = _CSRC) -> tuple[str, Path]:
    """The extension's module name and build directory for ``variant`` (``"native"`` or ``"generic"``)."""
    name = f"rnnkit_kernels_{variant}_{cache_key(csrc, flags=_FLAGS[variant])}"
    return name, extensions_root() / name


def _import_built(name: str, build_dir: Path) -> Any | None:
    """The module of a finished build in ``build_dir``, or ``None`` if there is none (yet)."""
    library = build_dir / f"{name}{_LIB_EXT}"
    if not ((build_dir / _MARKER).is_file() and library.is_file()):
        return None
    # Imported directly rather than through cpp_extension.load: that would rewrite build.ninja with this
    # checkout's paths and torch include directory, and ninja would rebuild whenever they differ.
    spec = importlib.util.spec_from_file_location(name, library)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_build(**kwargs: Any) -> Any:
    """torch.utils.cpp_extension.load with ninja on PATH (a seam the tests replace)."""
    from torch.utils.cpp_extension import load as build

    if shutil.which("ninja") is None:  # the `ninja` wheel ships the binary; a non-activated venv hides it
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    return build(**kwargs)


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        pid = path.read_text().strip()
        if pid:
            return f" (held by pid {pid})"
    return ""


@contextlib.contextmanager
def _build_lock(build_dir: Path, timeout: float) -> Iterator[None]:
    """Hold ``build_dir/rnnkit.lock`` while building; give up after ``timeout`` seconds with a message naming it.

    An flock, not a file that exists-or-not: the kernel releases it when its holder dies, so a build killed
    halfway can never leave it held. It also makes torch's own lock file provably stale whenever we hold ours.
    """
    if fcntl is None:
        yield from _wait_for_baton(build_dir, timeout)
        return
    path = build_dir / _LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"waited {timeout:g}s for the kernel build lock {path}{_holder(path)}: another process is "
                        f"building the C++ kernels or is stuck. Wait for it or stop it, or delete {path}; "
                        "RNNKIT_KERNEL_LOCK_TIMEOUT sets how long to wait (seconds)"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # only to name the holder in the message above
        _remove_stale_baton(build_dir)
        yield
    finally:
        os.close(fd)  # releases the flock; the file stays (deleting it would race with the next locker)


def _remove_stale_baton(build_dir: Path) -> None:
    """Delete torch's FileBaton ``lock`` left by a killed build: with our flock held nobody else is building here,
    and torch would otherwise wait for it forever."""
    baton = build_dir / "lock"
    if baton.exists():
        baton.unlink(missing_ok=True)
        warnings.warn(
            f"rnnkit: removed {baton}, a lock left by a kernel build that was killed", RuntimeWarning, stacklevel=4
        )


def _wait_for_baton(build_dir: Path, timeout: float) -> Iterator[None]:
    """Without flock: wait for torch's lock file to go away, at most ``timeout`` seconds."""
    baton = build_dir / "lock"
    deadline = time.monotonic() + timeout
    while baton.exists():
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"waited {timeout:g}s for the kernel build lock {baton}. If no other process is building the "
                f"C++ kernels it was left by a killed build: delete {baton}"
            )
        time.sleep(0.2)
    yield


def _compile(name: str, build_dir: Path, csrc: Path, flags: Sequence[str], timeout: float) -> Any:
    """Build (or import, if another process finished it meanwhile) the extension ``name`` in ``build_dir``."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(build_dir, timeout):
        module = _import_built(name, build_dir)
        if module is not None:
            return module
        # Compile copies inside the build directory: the same paths from every checkout, so ninja's record of
        # the commands it ran stays valid whichever checkout built first.
        src = build_dir / "src"
        src.mkdir(exist_ok=True)
        names = []
        for path in source_files(csrc):
            data, copy = path.read_bytes(), src / path.name
            if not copy.is_file() or copy.read_bytes() != data:
                copy.write_bytes(data)
            names.append(path.name)
        sources = [str(src / n) for n in names if n.endswith(".cpp")]
        module = _torch_build(name=name, sources=sources, extra_cflags=list(flags), build_directory=str(build_dir))
        import torch

        record = {"name": name, "torch": torch.__version__, "flags": list(flags), "sources": names}
        tmp = build_dir / f"{_MARKER}.{os.getpid()}"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(build_dir / _MARKER)  # atomic: a reader sees no marker or a whole one
        return module


def _reason(exc: BaseException) -> str:
    """One line for a warning: the exception's first line, plus the first compiler error if there is one."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0].split(": [1/", 1)[0]  # torch appends ninja's log, compile commands and all, to its first line
    error = next((ln for ln in lines[1:] if "error" in ln.lower()), None)
    return head[:600] + (f" ... {error[:200]}" if error else "")


@dataclass
class _Result:
    module: Any | None
    info: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None


_CONFLICT = (
    "rnnkit: RNNKIT_NO_EXT=1 (skip the C++ kernels) and RNNKIT_REQUIRE_KERNELS=1 (fail without them) contradict "
    "each other: unset one"
)
_RESULT: _Result | None = None  # the one attempt per process; tests reset it
_RESULT_LOCK = threading.Lock()
_WARNED = False


def _attempt(csrc: Path = _CSRC) -> _Result:
    info: dict[str, Any] = {"built": False, "name": None, "build_dir": None, "variant": None, "reason": None}
    if _flag("RNNKIT_NO_EXT"):
        return _Result(None, info | {"reason": "disabled by RNNKIT_NO_EXT", "disabled": True})
    try:
        timeout = lock_timeout()
        candidates = [(variant, *build_directory(variant, csrc)) for variant in _FLAGS]
        for variant, name, build_dir in candidates:  # a finished build: import it, no compiler or lock needed
            info.update(variant=variant, name=name, build_dir=str(build_dir))
            module = _import_built(name, build_dir)
            if module is not None:
                return _Result(module, info | {"built": True})
        for variant, name, build_dir in candidates:
            info.update(variant=variant, name=name, build_dir=str(build_dir))
            try:
                module = _compile(name, build_dir, csrc, _FLAGS[variant], timeout)
                return _Result(module, info | {"built": True})
            except TimeoutError:
                raise  # another process holds the lock: the generic variant would not fare better
            except Exception as exc:  # e.g. a compiler without -march=native: try the next variant
                error: BaseException = exc
        raise error
    except Exception as exc:  # no compiler, headers or ninja; a lock held too long: stay correct, just slower
        return _Result(None, info | {"reason": _reason(exc)}, exc)


def _result() -> _Result:
    global _RESULT
    if _RESULT is not None:  # load() runs on every forward pass: no lock once settled
        return _RESULT
    with _RESULT_LOCK:
        if _RESULT is None:
            _RESULT = _attempt()
        return _RESULT


def load() -> Any | None:
    """The compiled kernel module, or ``None`` if it cannot be built here (warns once).

    Raises:
        RuntimeError: the build failed and ``RNNKIT_REQUIRE_KERNELS=1``; or that and ``RNNKIT_NO_EXT=1`` are both set.
    """
    global _WARNED
    if kernels_required() and _flag("RNNKIT_NO_EXT"):
        raise RuntimeError(_CONFLICT)
    result = _result()
    if result.module is None and not result.info.get("disabled"):
        reason = result.info["reason"]
        if kernels_required():
            raise RuntimeError(
                f"rnnkit: RNNKIT_REQUIRE_KERNELS=1 but the C++ kernels could not be built: {reason} (the full "
                "error is chained below; unset RNNKIT_REQUIRE_KERNELS to fall back to the slower PyTorch paths)"
            ) from result.error
        if not _WARNED:
            _WARNED = True
            hint = (
                "" if isinstance(result.error, TimeoutError) else " Install a C++ compiler (g++) to get the fast ones."
            )
            warnings.warn(
                f"rnnkit: could not build the CPU kernels ({reason}); using the slower pure-PyTorch paths.{hint}",
                RuntimeWarning,
                stacklevel=2,
            )
    return result.module


def status() -> dict[str, Any]:
    """Whether the kernels are in use, for benchmarks and reports; builds them first if needed, never raises.

    Keys: ``built`` (bool), ``name``, ``build_dir``, ``variant`` (``"native"`` or ``"generic"``), ``reason`` (why
    not built, else ``None``), ``required`` (``RNNKIT_REQUIRE_KERNELS``).
    """
    if kernels_required() and _flag("RNNKIT_NO_EXT"):
        return {"built": False, "name": None, "build_dir": None, "variant": None, "reason": _CONFLICT, "required": True}
    info = dict(_result().info)
    info.pop("disabled", None)
    return info | {"required": kernels_required()}
