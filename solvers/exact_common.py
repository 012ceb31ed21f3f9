"""Shared machinery of the exact solvers: per-row problems, the row pool, merging.

Rows of a mask problem are independent. For row ``i`` with weights ``w`` and
pruning indicator ``z ∈ {0,1}^d`` (1 = pruned) the loss is

    f_i(z) = zᵀ Q z,     Q = D_w G D_w   (D_w = diag(w)),   Q ⪰ 0,

subject to ``Σ_j z_j = k`` (per-row) or ``Σ_{j∈g} z_j = m − n`` for every group
``g`` of ``m`` consecutive columns (N:M). Each backend solves the *normalised*
row ``q = Q / s`` with ``s = mean(diag Q)`` (so ``mean(diag q) = 1``; solvers'
absolute tolerances then mean the same thing on every row) and results are
un-scaled by ``s``. Dead inputs (``G_jj = 0``) and zero weights give zero rows
and columns of ``q``: such ``z_j`` are free to prune at no cost.

Before a backend sees a row, :func:`reduce_row` fixes to *kept* every column
that provably cannot be pruned by any solution better than the start (its
Schur-complement bound exceeds twice the start's value) and renormalises the
rest; trivial rows (k = 0, k = d, all-zero q, zero-loss start) never reach a
backend. Without the fixing, outlier channels (q_jj 10⁴–10⁶ × the optimum)
made HiGHS return wrong "optimal" rows within its absolute tolerances.

Orchestration (:func:`solve_rows`): rows are solved by a backend's top-level
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

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem
from solvers.result import ERROR, FEASIBLE, OPTIMAL, TIME_LIMIT, SolveResult, make_result

GAP_TOL = 1e-6
"""Default relative optimality gap asked of every backend."""
AGREE_RTOL, AGREE_ATOL = 1e-6, 1e-9
"""Backend objective vs our float64 value of its mask (normalised scale)."""

COMMON_SETTINGS = ("row_time_limit", "workers", "gap_tol", "threads", "progress", "reduce")


@dataclass
class RowQP:
    """One normalised row: min zᵀ q z s.t. ``Σ_{j∈groups[t]} z_j = counts[t]`` for every t."""

    row: int
    q: np.ndarray                  # [d, d] float64, mean diagonal 1 (or all zero)
    scale: float                   # Q = scale · q
    groups: list[np.ndarray]       # column index sets of the cardinality constraints (a partition)
    counts: list[int]              # pruned per set
    warm: np.ndarray | None = None  # bool [d], True = pruned

    @property
    def d(self) -> int:
        return self.q.shape[0]

    @property
    def k(self) -> int:
        return int(sum(self.counts))

    def value(self, z: np.ndarray) -> float:
        """``zᵀ q z`` in float64 for a 0/1 vector."""
        zf = np.asarray(z, dtype=np.float64)
        return float(zf @ self.q @ zf)

    def is_feasible(self, z: np.ndarray) -> bool:
        z = np.asarray(z, dtype=bool)
        return z.shape == (self.d,) and all(int(z[g].sum()) == c for g, c in zip(self.groups, self.counts))


@dataclass
class RowOutcome:
    """What a backend reports for one row (normalised scale)."""

    z: np.ndarray | None            # bool [d], True = pruned; None when the backend found nothing
    bound: float                     # dual bound (−inf / 0 when none)
    objective: float = math.nan      # backend's own objective of ``z``
    proved: bool = False             # backend proved optimality within gap_tol
    timed_out: bool = False
    nodes: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    error: str = ""                  # non-empty: the backend failed on this row
    fixed: int = 0                   # columns fixed to "keep" by :func:`reduce_row`


@dataclass
class RowReport:
    row: int
    status: str
    bound: float                     # original units
    nodes: int
    seconds: float
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def row_problems(problem: MaskProblem, warm_mask: torch.Tensor | None) -> list[RowQP]:
    """Normalised per-row QPs of ``problem`` (``warm_mask``: keep-mask or None)."""
    gram = problem.gram.detach().to("cpu", torch.float64).numpy()
    weight = problem.weight.detach().to("cpu", torch.float64).numpy()
    pattern = problem.pattern
    if isinstance(pattern, NM):
        groups = [np.arange(s, s + pattern.m) for s in range(0, problem.d_in, pattern.m)]
        counts = [pattern.pruned_per_group] * len(groups)
    elif isinstance(pattern, PerRow):
        groups, counts = [np.arange(problem.d_in)], [pattern.k]
    else:
        raise TypeError(f"unsupported pattern {pattern!r}")
    warm = None if warm_mask is None else (~warm_mask.cpu()).numpy()
    rows = []
    for i in range(problem.d_out):
        w = weight[i]
        q = gram * w[:, None] * w[None, :]
        q = 0.5 * (q + q.T)
        s = float(np.mean(np.diag(q)))
        if s > 0 and math.isfinite(s):
            q = q / s
        else:
            s, q = 0.0, np.zeros_like(q)
        rows.append(RowQP(i, q, s, groups, counts, None if warm is None else warm[i].copy()))
    return rows


def diagonal_start(row: RowQP) -> np.ndarray:
    """Wanda-like feasible z (prune the smallest ``q_jj`` of each set) when no warm start is given."""
    z = np.zeros(row.d, dtype=bool)
    diag = np.diag(row.q)
    for g, c in zip(row.groups, row.counts):
        z[g[np.argsort(diag[g], kind="stable")[:c]]] = True
    return z


def trivial_outcome(row: RowQP) -> RowOutcome | None:
    """Rows solved without a backend: every set all/none pruned, an all-zero q, or a zero-loss start."""
    if all(c in (0, len(g)) for g, c in zip(row.groups, row.counts)):
        z = np.zeros(row.d, dtype=bool)
        for g, c in zip(row.groups, row.counts):
            z[g] = c > 0
    elif row.scale == 0.0:
        z = row.warm if row.warm is not None else diagonal_start(row)
    elif row.warm is not None and row.value(row.warm) <= 0.0:
        z = row.warm
    else:
        return None
    v = row.value(z)
    return RowOutcome(z, v, v, proved=True)


def schur_bounds(q: np.ndarray, k: int, eps: float) -> np.ndarray:
    """Lower bounds ``β_j ≤ zᵀ q z`` for every ``z ∈ [0,1]^d`` with ``z_j = 1`` and ``Σz = k``.

    ``‖z‖² ≤ Σz = k`` on that set, so ``zᵀqz ≥ zᵀ(q + εI)z − εk ≥ 1/((q + εI)⁻¹)_jj − εk``
    (the middle minimum over all real ``z`` with ``z_j = 1`` is the Schur complement).
    """
    lam, vec = np.linalg.eigh(q)
    inv_diag = (vec ** 2) @ (1.0 / (np.clip(lam, 0.0, None) + eps))
    return 1.0 / inv_diag - eps * k


def reduce_row(row: RowQP) -> tuple[RowQP, np.ndarray, float]:
    """Fix to *kept* every column that no solution better than the start can prune.

    With ``f₀`` the start's value, a column with ``β_j > 2 f₀`` (:func:`schur_bounds`,
    factor 2 as a margin against rounding) and not pruned by the start is
    removed; the rest is renormalised by its mean diagonal ``s``. Returns the
    reduced row, the kept original column indices and ``s``. This removes the
    outlier channels whose huge ``q_jj`` would otherwise dwarf the optimum and
    drown it in the LP solvers' absolute tolerances.
    """
    start = row.warm if row.warm is not None else diagonal_start(row)
    f0, every = row.value(start), np.arange(row.d)
    if f0 <= 0.0 or row.d < 3:
        return row, every, 1.0
    eps = max(1e-6 * f0 / max(row.k, 1), 1e-12 * row.d)
    fixed = (schur_bounds(row.q, row.k, eps) > 2.0 * f0) & ~start
    if not fixed.any():
        return row, every, 1.0
    keep = np.flatnonzero(~fixed)
    pos = np.full(row.d, -1, dtype=np.int64)
    pos[keep] = np.arange(len(keep))
    groups, counts = [], []
    for g, c in zip(row.groups, row.counts):
        members = pos[g[~fixed[g]]]
        if len(members):
            groups.append(members)
            counts.append(c)
    q = row.q[np.ix_(keep, keep)]
    s = float(np.mean(np.diag(q)))
    s = s if s > 0.0 else 1.0
    return RowQP(row.row, q / s, row.scale * s, groups, counts, start[keep]), keep, s


def parse_settings(settings: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
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
    if workers == 1:
        outs = [_run_row(row_solver, r, deadline, row_limit, options) for r in _progress(rows, progress, solver)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = [pool.submit(_run_row, row_solver, r, deadline, row_limit, options) for r in rows]
            outs = [f.result() for f in _progress(futs, progress, solver)]
    z_all = np.zeros((problem.d_out, problem.d_in), dtype=bool)
    bounds = torch.zeros(problem.d_out, dtype=torch.float64)
    statuses, messages, nodes, fixed = [], [], 0, 0
    for r, out in zip(rows, outs):
        z, bound, status, msg = _judge(r, out, float(options["gap_tol"]))
        z_all[r.row] = z
        bounds[r.row] = bound * r.scale
        statuses.append(status)
        nodes += int(out.nodes)
        fixed += out.fixed
        build += out.build_seconds
        if msg:
            messages.append(f"row {r.row}: {msg}")
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    status = (ERROR if ERROR in counts else OPTIMAL if counts.get(OPTIMAL, 0) == len(rows)
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


def _progress(items, enabled: bool, label: str):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=f"{label} rows", unit="row", leave=False)
