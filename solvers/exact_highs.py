"""``highs``: exact rows with the HiGHS MIP solver (highspy) on a linearised row QP.

HiGHS has no MIQP ("Cannot solve MIQP problems"), so every row ``min zᵀ q z``
(normalised ``q``, see :mod:`solvers.exact_common`) is linearised exactly
(:mod:`solvers.exact_linear`): ``formulation="mccormick"`` (a product variable
per nonzero pair) or ``"glover"`` (one continuous variable per column with
cardinality-tightened bounds); ``"auto"`` (default) takes McCormick for
``d ≤ 64`` and Glover above, where McCormick's ``d²/2`` columns make every LP slow.

Choice, measured here on the issue's benchmark (``python -m bench.exact_speed``,
1 solver thread, k = d/2, real-layer rows = SmolLM2-135M layer-10 q_proj crops):
see the README section "Exact solvers" for the table. Summary of the prior
measurements that guided it (notes of the project, 60 s limit): on real rows
McCormick proved d = 48 in 2.2 s median vs 12.9 s for Glover; on synthetic rows
both took 2–3 s at d = 48; neither proved d = 64 reliably within 60 s.

Solver settings: ``mip_rel_gap = gap_tol`` (1e-6), ``mip_abs_gap = 1e-9``
(normalised scale), ``threads`` (1), ``random_seed = seed``, time limit per row.
The warm start is handed over with ``setSolution`` as the first incumbent.
The dual bound is ``info.mip_dual_bound``, nodes ``info.mip_node_count``.
"""

from __future__ import annotations

import time

import numpy as np

from solvers.exact_common import RowOutcome, RowQP, parse_settings, solve_rows
from solvers.exact_linear import FORMULATIONS, build
from solvers.registry import register_solver

DEFAULT_FORMULATION = "glover+oa"


def check_formulation(name: str) -> str:
    if name not in FORMULATIONS:
        raise ValueError(f"unknown formulation {name!r}; choose from {', '.join(FORMULATIONS)}")
    return name


def highs_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row with HiGHS; see the module docstring."""
    import highspy

    t0 = time.perf_counter()
    model = build(row, options["formulation"], int(options["oa_points"]))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
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
                 requires=("highspy",), uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"))
def solve_highs(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``formulation`` (glover+oa | glover | mccormick+oa | mccormick), ``oa_points`` (16),
    plus the common exact settings (:mod:`solvers.exact_common`)."""
    opts = parse_settings(settings, {"formulation": DEFAULT_FORMULATION, "oa_points": 16})
    check_formulation(opts["formulation"])
    opts["seed"] = seed
    return solve_rows(problem, warm_start, "highs", highs_row, time_limit, opts)
