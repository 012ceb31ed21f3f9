"""The row pool of the exact solvers: run a backend on every row, judge, merge.

Rows (:mod:`solvers.exact.rows`) are solved by a backend's top-level
``row_solver(row, time_limit, options) -> RowOutcome`` one after the other
(``workers=1``) or in a process pool (default ``workers = os.cpu_count()``).
Each row gets ``min(row_time_limit, time left before the instance deadline)``;
rows not started before the deadline keep their warm-start mask with the
trivial bound 0 (``Q ⪰ 0``). A row counts as **optimal** only when the backend
proved it within the relative gap ``gap_tol`` (default 1e-6) *and* our float64
value of its mask agrees with the backend's objective (relative 1e-6 plus 1e-9
absolute on the normalised scale); the instance is optimal only when every row
is. Lower bounds: per-row ``s · max(0, backend bound)``, clipped to the row's
verified loss; the instance bound is their sum.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from solvers.exact.rows import RowOutcome, RowQP, diagonal_start, reduce_row, row_problems, trivial_outcome
from solvers.problem import MaskProblem
from solvers.result import ERROR, FEASIBLE, OPTIMAL, TIME_LIMIT, SolveResult, make_result

GAP_TOL = 1e-6
"""Default relative optimality gap asked of every backend."""
AGREE_RTOL, AGREE_ATOL = 1e-6, 1e-9
"""Backend objective vs our float64 value of its mask (normalised scale)."""

COMMON_SETTING_TYPES = {"row_time_limit": (float, type(None)), "workers": (int,), "gap_tol": (float,),
                        "threads": (int,), "progress": (bool,), "reduce": (bool,)}
"""The settings every exact backend accepts, with their types (see :mod:`solvers.settings`)."""
COMMON_SETTINGS = tuple(COMMON_SETTING_TYPES)


def exact_setting_types(own: dict[str, tuple[type, ...]]) -> dict[str, tuple[type, ...]]:
    """The common settings plus a backend's ``own``: what it declares to the registry."""
    return {**COMMON_SETTING_TYPES, **own}

@contextlib.contextmanager
def solver_threads(threads: int) -> Iterator[None]:
    """Run a row backend on ``threads`` torch threads (the ``threads`` setting), restoring the caller's count."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def exact_settings(settings: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """Validate ``settings`` against the common ones plus the backend's ``own`` defaults."""
    unknown = sorted(set(settings) - set(COMMON_SETTINGS) - set(own))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(set(COMMON_SETTINGS) | set(own)))}")
    out = dict(own)
    out.update(row_time_limit=None, workers=os.cpu_count() or 1, gap_tol=GAP_TOL, threads=1, progress=False, reduce=True)
    out.update(settings)
    if out["row_time_limit"] is not None and not float(out["row_time_limit"]) > 0:
        raise ValueError(f"row_time_limit must be positive seconds, got {out['row_time_limit']!r}")
    if not isinstance(out["workers"], int) or out["workers"] < 1:
        raise ValueError(f"workers must be a positive integer, got {out['workers']!r}")
    if not isinstance(out["threads"], int) or out["threads"] < 1:
        raise ValueError(f"threads must be a positive integer, got {out['threads']!r}")
    if not 0 <= float(out["gap_tol"]) < 1:
        raise ValueError(f"gap_tol must be in [0, 1), got {out['gap_tol']!r}")
    return out


def _run_row(row_solver: Callable[..., RowOutcome], full: RowQP, deadline: float | None,
             row_limit: float | None, options: dict[str, Any]) -> RowOutcome:
    """Worker body: trivial rows, reduction, time budget; exceptions become errors.

    The backend sees the reduced row; its outcome is mapped back to ``full``'s columns and scale.
    """
    t0 = time.perf_counter()
    done = trivial_outcome(full)
    if done is not None:
        return done
    if deadline is not None and deadline - time.time() <= 0:
        return RowOutcome(None, 0.0, timed_out=True)  # before the reduction: its eigensolve costs too
    try:
        row, keep, s = reduce_row(full) if options.get("reduce", True) else (full, np.arange(full.d), 1.0)
        out = trivial_outcome(row)
        if out is None:
            limit = row_limit
            if deadline is not None:
                left = deadline - time.time()
                if left <= 0:
                    return RowOutcome(None, 0.0, timed_out=True)
                limit = left if limit is None else min(limit, left)
            out = row_solver(row, limit, options)
    except Exception as exc:  # noqa: BLE001 — a backend failure must not kill the run
        return RowOutcome(None, 0.0, error=f"{type(exc).__name__}: {exc}")
    z = None
    if out.z is not None:
        z = np.zeros(full.d, dtype=bool)
        z[keep] = out.z
    return RowOutcome(z, out.bound * s, out.objective * s, out.proved, out.timed_out, out.nodes,
                      out.build_seconds + (time.perf_counter() - t0 - out.build_seconds - out.solve_seconds),
                      out.solve_seconds, out.error, full.d - len(keep))


def _judge(row: RowQP, out: RowOutcome, gap_tol: float) -> tuple[np.ndarray, float, str, str]:
    """Pick the row's mask, bound (normalised) and status; check agreement with our value."""
    start = row.warm if row.warm is not None else diagonal_start(row)
    best, best_v, msg = start, row.value(start), ""
    if out.z is not None:
        z = np.asarray(out.z, dtype=bool)
        if not row.is_feasible(z):
            return best, 0.0, ERROR, "backend returned a mask that breaks the pattern"
        v = row.value(z)
        agree = (not math.isfinite(out.objective)
                 or abs(v - out.objective) <= AGREE_RTOL * max(abs(v), abs(out.objective)) + AGREE_ATOL)
        if not agree:
            msg = f"backend objective {out.objective:.10g} disagrees with float64 value {v:.10g}"
        if v <= best_v or out.proved:
            best, best_v = z, v
        proved = out.proved and agree
    else:
        proved = False
    bound = max(0.0, out.bound) if math.isfinite(out.bound) else 0.0
    bound = min(bound, best_v)
    if out.error:
        return best, bound, ERROR, out.error
    # the backend's gap plus our agreement tolerance (its objective vs our float64 value)
    if proved and best_v - bound <= (gap_tol + AGREE_RTOL) * best_v + 2 * AGREE_ATOL:
        return best, bound, OPTIMAL, msg
    return best, bound, (TIME_LIMIT if out.timed_out else FEASIBLE), msg


def solve_rows(problem: MaskProblem, warm_start, solver: str, row_solver: Callable[..., RowOutcome],
               time_limit: float | None, options: dict[str, Any]) -> SolveResult:
    """Solve every row with ``row_solver`` and merge into one verified :class:`SolveResult`."""
    t0 = time.perf_counter()
    rows = row_problems(problem, None if warm_start is None else warm_start.mask)
    build = time.perf_counter() - t0
    deadline = None if time_limit is None else time.time() + float(time_limit)
    row_limit = None if options["row_time_limit"] is None else float(options["row_time_limit"])
    workers, progress = min(options["workers"], max(1, len(rows))), bool(options["progress"])
    z_all = np.zeros((problem.d_out, problem.d_in), dtype=bool)
    bounds = torch.zeros(problem.d_out, dtype=torch.float64)
    statuses, messages, outs, nodes, fixed = [], [], [], 0, 0

    def judge(r: RowQP, out: RowOutcome) -> None:  # each row is judged and dropped as soon as it is done
        nonlocal nodes, fixed, build
        z, bound, status, msg = _judge(r, out, float(options["gap_tol"]))
        z_all[r.row] = z
        bounds[r.row] = bound * r.scale
        statuses.append(status)
        outs.append(out)
        nodes += int(out.nodes)
        fixed += out.fixed
        build += out.build_seconds
        if msg:
            messages.append(f"row {r.row}: {msg}")

    if workers == 1:
        for r in _progress(rows, progress, solver):
            judge(r, _run_row(row_solver, r, deadline, row_limit, options))
    else:
        # at most 2·workers rows in flight: each carries its d_in × d_in q to a worker
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            pending: deque = deque()
            bar = _progress(range(len(rows)), progress, solver)
            done_rows = iter(bar)
            for r in rows:
                pending.append((r, pool.submit(_run_row, row_solver, r, deadline, row_limit, options)))
                if len(pending) >= 2 * workers:
                    first, fut = pending.popleft()
                    judge(first, fut.result())
                    next(done_rows, None)
            while pending:
                first, fut = pending.popleft()
                judge(first, fut.result())
                next(done_rows, None)
    n_rows = len(rows)
    del rows
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    status = (ERROR if ERROR in counts else OPTIMAL if counts.get(OPTIMAL, 0) == n_rows
              else TIME_LIMIT if TIME_LIMIT in counts else FEASIBLE)
    solve_s = sum(o.solve_seconds for o in outs)
    mask = torch.from_numpy(~z_all)
    res = make_result(problem, mask, solver, status, build_seconds=build, solve_seconds=solve_s, nodes=nodes,
                      message="; ".join(dict.fromkeys(messages))[:2000],
                      extra={"row_status_counts": counts, "wall_seconds": time.perf_counter() - t0,
                             "gap_tol": float(options["gap_tol"]), "workers": workers, "fixed_columns": fixed,
                             "row_seconds": [round(o.build_seconds + o.solve_seconds, 4) for o in outs]})
    res.row_lower_bounds = torch.minimum(bounds, res.row_objectives)
    res.lower_bound = float(res.row_lower_bounds.sum())
    res.settings = {k: v for k, v in options.items()}
    if warm_start is not None:
        res.trace = [(0.0, warm_start.objective), (res.extra["wall_seconds"], res.objective)]
    return res


def pool_context():
    """The platform's default start method (fork on Linux up to Python 3.13: cheap, no re-import), unless
    this process holds a CUDA context, which a forked child inherits broken; then a fork server."""
    return multiprocessing.get_context("forkserver") if torch.cuda.is_initialized() else multiprocessing.get_context()


def _progress(items, enabled: bool, label: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"{label} rows", unit="row", leave=False)
