"""Compiling the C++ kernels safely: once per environment, never timed, never hung.

``torch.utils.cpp_extension.load_inline`` guards a build with a bare ``lock`` file in the build
directory and waits, without a message and without end, while that file exists. A process killed
while compiling (Ctrl-C, a time-out) leaves the file behind, and every later call then slept
forever. Here every build runs under an ``fcntl`` lock of our own, which the operating system
releases when its owner dies: whoever holds it is the only possible builder, so a torch ``lock``
file found while holding it is stale and is removed (with a one-line warning). A process that
waits for another's build says so once on stderr and gives up after ``BUILD_WAIT_SECONDS``
(the caller then falls back to the pure-torch search).

Where: ``$MASKBENCH_CACHE/extensions/<name>/`` (default ``~/.cache/maskbench``), ``<name>`` keyed
on the source, the flags, torch's version and the Python environment (:func:`build_name`), so two
environments never rebuild each other's kernel and an edited source is never served stale.
The first build prints one notice on stderr; it takes about a minute on 2 cores.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

BUILD_WAIT_SECONDS = 900.0
"""How long to wait for another process's build before falling back to the torch search."""


def cache_root() -> Path:
    """``$MASKBENCH_CACHE`` or ``~/.cache/maskbench``: maskbench's cache of derived files."""
    return Path(os.environ.get("MASKBENCH_CACHE") or Path.home() / ".cache" / "maskbench").expanduser()


def build_name(prefix: str, source: str, cflags: tuple[str, ...]) -> str:
    """``prefix_<12 hex>``: keyed on the source, flags, torch version and Python environment."""
    key = "\0".join([source, " ".join(cflags), torch.__version__, sys.prefix, sys.version])
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _say(message: str) -> None:
    print(f"maskbench: {message}", file=sys.stderr, flush=True)


def _acquire(handle, name: str, wait_seconds: float) -> bool:
    """Take the exclusive build lock, waiting up to ``wait_seconds`` (one notice if we wait)."""
    deadline, told = time.monotonic() + wait_seconds, False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            if not told:
                _say(f"waiting for another process that is compiling {name} …")
                told = True
            time.sleep(0.2)


def build_extension(prefix: str, source: str, functions: tuple[str, ...], cflags: tuple[str, ...],
                    wait_seconds: float = BUILD_WAIT_SECONDS) -> ModuleType:
    """Compile (or load the cached build of) ``source`` with ``load_inline``; see the module docstring.

    Raises ``TimeoutError`` when another process's build did not finish within ``wait_seconds``,
    and whatever the compiler raises when the build fails.
    """
    from torch.utils.cpp_extension import load_inline

    name = build_name(prefix, source, cflags)
    build_dir = cache_root() / "extensions" / name
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir.parent / f"{name}.build-lock", "w") as handle:
        if not _acquire(handle, name, wait_seconds):
            raise TimeoutError(f"another process has been compiling {name} for over {wait_seconds:.0f} s")
        stale = build_dir / "lock"
        if stale.exists():
            stale.unlink()
            _say(f"removed a stale build lock of {name} left by an interrupted compile")
        if not any(build_dir.glob(f"{name}*.so")):
            _say(f"compiling the C++ kernels {name} (once per environment, about a minute; not timed) …")
        return load_inline(name=name, cpp_sources=[source], functions=list(functions),
                           extra_cflags=list(cflags), build_directory=str(build_dir), verbose=False)
