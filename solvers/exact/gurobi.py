"""``gurobi``: exact rows with Gurobi's native MIQP (gurobipy, extra ``gurobi``).

Each normalised row is passed as it is: binary ``z``, objective ``zᵀ q z``, the
cardinality constraints, the warm start as ``Start``. Parameters:
``MIPGap = gap_tol`` (1e-6), ``MIPGapAbs = 1e-9`` (normalised scale),
``Threads``, ``Seed``, ``TimeLimit`` per row. Bound ``ObjBound``, nodes ``NodeCount``.

The pip wheel ships a size-limited licence (quadratic models of at most a few
hundred variables); when Gurobi refuses a model for its size (error 10010) or
cannot start an environment, the row is reported with status ``error`` and the
message "unavailable for this size" / the licence error — never an exception.
"""

from __future__ import annotations

import time

import numpy as np

from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows
from solvers.exact.rows import RowOutcome, RowQP
from solvers.registration import register_solver

SIZE_LIMIT_ERRNO = 10010


def gurobi_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row with Gurobi; see the module docstring."""
    import gurobipy as gp

    t0 = time.perf_counter()
    try:
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
    except gp.GurobiError as exc:
        return RowOutcome(None, 0.0, error=f"gurobi environment unavailable: {exc}")
    try:
        m = gp.Model(env=env)
        m.Params.MIPGap = float(options["gap_tol"])
        m.Params.MIPGapAbs = 1e-9
        m.Params.Threads = int(options["threads"])
        m.Params.Seed = int(options.get("seed", 0))
        if time_limit is not None:
            m.Params.TimeLimit = float(max(time_limit, 1e-3))
        z = m.addMVar(row.d, vtype=gp.GRB.BINARY, name="z")
        for g, c in zip(row.groups, row.counts):
            m.addConstr(z[g.tolist()].sum() == c)
        m.setObjective(z @ row.q @ z, gp.GRB.MINIMIZE)
        if row.warm is not None:
            z.Start = row.warm.astype(float)
        t1 = time.perf_counter()
        m.optimize()
        t2 = time.perf_counter()
        status = m.Status
        nodes = int(m.NodeCount)
        if m.SolCount == 0 or status not in (gp.GRB.OPTIMAL, gp.GRB.TIME_LIMIT, gp.GRB.INTERRUPTED):
            return RowOutcome(None, 0.0, nodes=nodes, build_seconds=t1 - t0, solve_seconds=t2 - t1,
                              error=f"Gurobi status {status}")
        return RowOutcome(np.asarray(z.X) > 0.5, float(m.ObjBound), float(m.ObjVal),
                          proved=status == gp.GRB.OPTIMAL, timed_out=status == gp.GRB.TIME_LIMIT, nodes=nodes,
                          build_seconds=t1 - t0, solve_seconds=t2 - t1)
    except gp.GurobiError as exc:
        if getattr(exc, "errno", None) == SIZE_LIMIT_ERRNO or "size-limited" in str(exc):
            return RowOutcome(None, 0.0, error=f"gurobi unavailable for this size (d={row.d}): {exc}")
        return RowOutcome(None, 0.0, error=f"gurobi error {getattr(exc, 'errno', '')}: {exc}")
    finally:
        env.dispose()


@register_solver("gurobi", "exact", "Gurobi native MIQP per row (size-limited with the pip licence)",
                 requires=("gurobipy",), extra="gurobi", uses_warm_start=True,
                 default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({}))
def solve_gurobi(problem, warm_start, time_limit, seed, **settings):
    """Settings: the common exact settings (:mod:`solvers.exact.rows`)."""
    opts = exact_settings(settings, {})
    opts["seed"] = seed
    return solve_rows(problem, warm_start, "gurobi", gurobi_row, time_limit, opts)
