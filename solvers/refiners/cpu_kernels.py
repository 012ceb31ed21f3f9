"""The refiners' C++ CPU kernels, compiled once as one extension and loaded on demand.

Sources (beside this file, in ``csrc/``): ``swap_cpu.cpp`` — the exact best 1-swap per row of
``swap`` (:mod:`solvers.refiners.swap_cpp`) — and ``tabu_cpu.cpp`` — the tabu search of ``lns``
(:mod:`solvers.refiners.tabu_cpp`). They are built together so that a fresh environment pays one
compile (about a minute on 2 cores, the first time only, outside every timed region: solvers call
:func:`load` before their clock starts) instead of one per kernel. The build is cached by
:mod:`solvers.refiners.kernel_build` under a name keyed on both sources, the flags, torch's version and
the Python environment.

Flags: ``-O3 -march=native -ffp-contract=off`` (no FMA contraction, so SIMD and scalar passes of
the same expression give bit-identical values), ``-fno-trapping-math`` (floating-point
comparisons may be if-converted: without it GCC leaves every loop with a ``x < y ? a : b`` select
scalar — "control flow in loop" — which made the bound passes of ``swap`` scalar; values are
unchanged, only floating-point exception flags are not kept) and ``-fopenmp`` (SIMD pragmas, and
``at::parallel_for`` on torch's own OpenMP threads: the extension resolves its OpenMP calls in the
runtime torch has already loaded, so there is one thread pool; ``-fopenmp-simd`` where torch does not
use OpenMP, see :data:`OPENMP_FLAG`). The kernels release the GIL; the swap kernel splits its rows
over torch's threads itself, the lns kernel's callers run row ranges in the Python threads of
:func:`thread_pool`.

If the build fails (no compiler, missing headers, another process's build that never ends),
:func:`load` returns None, says why once on stderr, and the solvers use their torch paths;
``MASKBENCH_NO_CPP=1`` forces that.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from solvers.device import pick_device
from solvers.refiners.kernel_build import build_extension

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = (CSRC / "swap_cpu.cpp", CSRC / "tabu_cpu.cpp")
"""The kernels' C++ sources, compiled as one translation unit in this order."""
OPENMP_FLAG = "-fopenmp" if torch.backends.openmp.is_available() else "-fopenmp-simd"
"""``-fopenmp`` where torch runs its threads on OpenMP (``at::parallel_for`` is then inline OpenMP code
in the kernel); otherwise torch's own thread pool serves ``at::parallel_for`` from libtorch and only the
SIMD pragmas are needed (and a compiler without OpenMP, such as Apple's clang, still builds the kernels)."""
CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math", OPENMP_FLAG)
FUNCTIONS = ("best_swaps", "column_order", "tabu_rows")
EXTENSION_PREFIX = "maskbench_cpu_kernels"

_CACHE: dict[str, object] = {}


def source_text() -> str:
    """The concatenated sources (what is compiled and what keys the build)."""
    return "\n".join(path.read_text() for path in SOURCES)


def load():
    """The compiled extension module, or None when it cannot be built (see :func:`load_error`)."""
    if "module" in _CACHE:
        return _CACHE["module"]
    module = None
    if os.environ.get("MASKBENCH_NO_CPP", "") not in ("", "0"):
        _CACHE["error"] = "disabled by MASKBENCH_NO_CPP"
    else:
        try:
            module = build_extension(EXTENSION_PREFIX, source_text(), FUNCTIONS, CFLAGS)
        except Exception as exc:  # noqa: BLE001 -- compiler or headers missing: fall back to torch
            _CACHE["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            print(f"maskbench: warning: the C++ kernels are unavailable ({_CACHE['error']}); "
                  "using the pure-torch searches", file=sys.stderr, flush=True)
    _CACHE["module"] = module
    return module


def load_error() -> str:
    """Why :func:`load` returned None ('' when the kernels are loaded)."""
    load()
    return str(_CACHE.get("error", ""))


def thread_pool(n: int):
    """A cached pool of at least ``n`` threads; the kernels release the GIL, so row ranges run in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    pool, size = _CACHE.get("pool"), _CACHE.get("pool_size", 0)
    if pool is None or size < n:
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="maskbench-kernel")
        _CACHE["pool"], _CACHE["pool_size"] = pool, n
    return pool


BACKENDS = ("auto", "cpp", "torch")


def kernel_device(backend: str, device: str | None) -> torch.device:
    """The device of a refiner's search: ``backend="cpp"`` without a device means the CPU (the kernels
    are CPU-only), also where CUDA is present; otherwise :func:`solvers.device.pick_device`."""
    return pick_device("cpu" if backend == "cpp" and device in (None, "auto") else device)


def choose_backend(backend: str, device: torch.device, kernel: str, cpp_is_for: str = "the CPU",
                   cpp_possible: bool = True) -> str:
    """``"cpp"`` (a compiled kernel of this module) or ``"torch"``, for a refiner on ``device``.

    ``auto`` takes the kernel on the CPU when it builds (:func:`load`, which compiles it once);
    ``torch`` always torch; ``cpp`` insists: a ValueError naming ``cpp_is_for`` where the kernel does not
    apply (another device, or ``cpp_possible`` False, e.g. swap's N:M), a RuntimeError naming ``kernel``
    and the build's error where it did not build.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto', 'cpp' or 'torch', got {backend!r}")
    if backend == "torch" or device.type != "cpu" or not cpp_possible:
        if backend == "cpp":
            raise ValueError(f"backend='cpp' is for {cpp_is_for}")
        return "torch"
    if load() is None:
        if backend == "cpp":
            raise RuntimeError(f"the CPU {kernel} kernel is unavailable: {load_error()}")
        return "torch"
    return "cpp"


def row_ranges(rows: int) -> list[tuple[int, int]]:
    """Split ``rows`` into at most ``torch.get_num_threads()`` contiguous ``[r0, r1)`` ranges, one per thread."""
    if rows <= 0:
        return []
    threads = max(1, min(torch.get_num_threads(), rows))
    step = -(-rows // threads)
    return [(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


def map_ranges(run: Callable[[int, int], object], ranges: list[tuple[int, int]]) -> list:
    """``run(r0, r1)`` for every range, in the threads of :func:`thread_pool` when there are several
    (the kernels release the GIL); the results in the order of ``ranges``."""
    if len(ranges) == 1:
        return [run(*ranges[0])]
    return list(thread_pool(len(ranges)).map(lambda r: run(*r), ranges))
