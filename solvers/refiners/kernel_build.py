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

Integrity: a compiled library is loaded into this process only when its sha256 matches the one
recorded (``<name>.so.sha256``) after it was last loaded without harm, or when a child process has
just loaded it (:func:`library_problem`): a truncated or overwritten ``.so`` would otherwise kill
the process with SIGBUS/SIGSEGV. A bad one is removed with a one-line warning and rebuilt; when
the rebuild fails, :mod:`solvers.refiners.cpu_kernels` falls back to the pure-torch search.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

PROBE_SECONDS = 120.0
"""How long a child process may take to load a compiled kernel whose checksum is not on record."""
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
        library = build_dir / f"{name}.so"
        if library.exists():
            problem = library_problem(library, name)
            if problem is not None:
                _say(f"warning: the compiled kernel {library} is damaged ({problem}); rebuilding it")
                for item in build_dir.iterdir():
                    if item.is_file():
                        item.unlink()
        if not library.exists():
            _say(f"compiling the C++ kernels {name} (once per environment, about a minute; not timed) …")
        module = load_inline(name=name, cpp_sources=[source], functions=list(functions),
                             extra_cflags=list(cflags), build_directory=str(build_dir), verbose=False)
        record = _record_path(library)
        if library.exists() and not (record.exists() and record.read_text().strip() == _sha256(library)):
            record.write_text(_sha256(library) + "\n")  # loaded in this process without harm: trusted from now on
        return module


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _record_path(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def probe_load(library: Path, name: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Load ``library`` as extension module ``name`` in a child Python process: None when that worked,
    else why not (the signal that killed the child, e.g. SIGBUS for a truncated file, or its last line)."""
    code = ("import importlib.util, sys, torch\n"
            "spec = importlib.util.spec_from_file_location(sys.argv[1], sys.argv[2])\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n")
    try:
        done = subprocess.run([sys.executable, "-c", code, name, str(library)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"loading it did not finish in {timeout:.0f} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"loading it killed the process with {signal.Signals(-done.returncode).name}"
    lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
    return f"loading it failed: {lines[-1] if lines else f'exit {done.returncode}'}"


def library_problem(library: Path, name: str) -> str | None:
    """None when ``library`` may be loaded in this process: its sha256 matches the one recorded after it was
    last loaded without harm, or a child process loads it (then it is recorded). Else why not."""
    record = _record_path(library)
    try:
        if record.exists() and record.read_text().strip() == _sha256(library):
            return None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    problem = probe_load(library, name)
    if problem is None:
        record.write_text(_sha256(library) + "\n")
    return problem
