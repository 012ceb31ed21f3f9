"""``highs``: exact rows with the HiGHS MIP solver (highspy) on a linearised row QP.

HiGHS has no MIQP ("Cannot solve MIQP problems"), so every row ``min zᵀ q z``
(normalised ``q``, see :mod:`solvers.exact.rows`) is written as an exact MILP
(:mod:`solvers.exact.formulations`). Default ``formulation="glover+oa"``: Glover's
compact linearisation (one continuous ``w_j = z_j·s_j(z)`` per column, bounds
tightened by the cardinality constraints) plus static outer-approximation cuts
of the convex objective — ``t_i ≥ 2a u_i − a²`` at 16 points ``a`` per eigen
component ``u_i = v_iᵀz`` of ``q − diag(δ)`` (δ the largest diagonal shift that
keeps it PSD) and one row ``objective ≥ Σ λ_i t_i + δᵀz``. Alternatives:
``glover``, ``mccormick`` (a product column per nonzero pair) and ``mccormick+oa``.

Why (measured here, 1 thread, k = d/2, wanda warm start; "syn" = this project's
LLM-like synthetic rows, "real" = SmolLM2-135M layer-10 q_proj crops):

* the plain linearisations have LP bounds far below 0 on these rows, so a
  time-out leaves bound 0: syn d = 32, 30 s limit — McCormick proved 1 of 2,
  Glover 1 of 2; d = 48 — neither (seeds 0–1);
* with 8 OA points: syn d = 32 proved 2 of 2 (glover+oa 12.3 s / 1.3 s,
  mccormick+oa 20.0 s / 2.7 s); d = 48 still 0 of 2 but with bounds at 50–60 %
  of the incumbent instead of 0;
* diagonal shift + points per component, real d = 64 seeds 0/1, 30 s limit:
  glover+oa 8 points 26.7 s / time-out, 16 points 10.8 s / time-out (bound
  1.058 vs 1.464), 32 points 15.7 s / time-out, 4 points time-out / time-out;
  mccormick+oa 25.1 s / time-out; syn d = 32: 16 points 4.8 s vs 8.0 s (8) and
  16.8 s (4). Hence glover+oa with 16 points. See docs/results/2026-11-29-exact-speed.md
  for the benchmark over d = 16…128.

Solver settings: ``mip_rel_gap = gap_tol`` (1e-6), ``mip_abs_gap = 1e-9`` and
feasibility tolerances 1e-9 (normalised scale), ``threads`` (1), ``random_seed =
seed``, time limit per row. The warm start is handed over with ``setSolution``
as the first incumbent. The dual bound is ``info.mip_dual_bound``, nodes
``info.mip_node_count``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from solvers.console import stdout_to_stderr
from solvers.exact.formulations import FORMULATIONS, build
from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows
from solvers.exact.rows import RowOutcome, RowQP
from solvers.registration import register_solver

DEFAULT_FORMULATION = "glover+oa"


def check_formulation(name: str) -> str:
    if name not in FORMULATIONS:
        raise ValueError(f"unknown formulation {name!r}; choose from {', '.join(FORMULATIONS)}")
    return name


_banner_diverted = False
_banner_lock = threading.Lock()


def quiet_highs():
    """A ``highspy.Highs`` with its output off, whose banner never reaches stdout.

    HiGHS 1.16 prints its banner ("Running HiGHS …") to the C-level stdout when a process builds
    its first instance — before any option can be set — which would mix it into a command's
    printed table. That first construction therefore runs inside
    :func:`solvers.console.stdout_to_stderr` (under a lock against other threads), as a ``--json``
    command does throughout; later instances print nothing.
    """
    import highspy

    global _banner_diverted
    with _banner_lock:  # two threads swapping file descriptor 1 at once could leave it on stderr
        if _banner_diverted:
            h = highspy.Highs()
        else:
            with stdout_to_stderr():
                h = highspy.Highs()
            _banner_diverted = True
    h.setOptionValue("output_flag", False)
    return h


def highs_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row with HiGHS; see the module docstring."""
    import highspy

    t0 = time.perf_counter()
    model = build(row, options["formulation"], int(options["oa_points"]))
    h = quiet_highs()
    h.setOptionValue("threads", int(options["threads"]))
    h.setOptionValue("mip_rel_gap", float(options["gap_tol"]))
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.setOptionValue("random_seed", int(options.get("seed", 0)))
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
    inf = highspy.kHighsInf
    h.addCols(model.n_cols, model.cost, np.where(np.isinf(model.col_lo), -inf, model.col_lo),
              np.where(np.isinf(model.col_hi), inf, model.col_hi), 0, np.array([], np.int32),
              np.array([], np.int32), np.array([], float))
    h.addRows(model.n_rows, np.where(np.isinf(model.row_lo), -inf, model.row_lo),
              np.where(np.isinf(model.row_hi), inf, model.row_hi), len(model.index),
              model.starts[:-1].astype(np.int32), model.index, model.value)
    ints = np.flatnonzero(model.integer).astype(np.int32)
    h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger))
    if row.warm is not None:
        sol = highspy.HighsSolution()
        sol.col_value = model.start_vector(row.warm, row.q).tolist()
        sol.value_valid = True
        h.setSolution(sol)
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    status = h.getModelStatus()
    info = h.getInfo()
    S = highspy.HighsModelStatus
    if status not in (S.kOptimal, S.kTimeLimit, S.kInterrupt, S.kSolutionLimit, S.kIterationLimit):
        return RowOutcome(None, 0.0, nodes=int(info.mip_node_count), build_seconds=t1 - t0,
                          solve_seconds=t2 - t1, error=f"HiGHS status {h.modelStatusToString(status)}")
    x = np.asarray(h.getSolution().col_value[:row.d]) if info.primal_solution_status else None
    z = None if x is None or len(x) < row.d else x > 0.5
    return RowOutcome(z, float(info.mip_dual_bound), float(info.objective_function_value),
                      proved=status == S.kOptimal, timed_out=status != S.kOptimal,
                      nodes=int(info.mip_node_count), build_seconds=t1 - t0, solve_seconds=t2 - t1)


@register_solver("highs", "exact", "HiGHS MIP on an exact linearisation (McCormick / Glover), per row",
                 requires=("highspy",), uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({"formulation": (str,), "oa_points": (int,)}))
def solve_highs(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``formulation`` (glover+oa | glover | mccormick+oa | mccormick), ``oa_points`` (16),
    plus the common exact settings (:mod:`solvers.exact.rows`)."""
    opts = exact_settings(settings, {"formulation": DEFAULT_FORMULATION, "oa_points": 16})
    check_formulation(opts["formulation"])
    opts["seed"] = seed
    return solve_rows(problem, warm_start, "highs", highs_row, time_limit, opts)
