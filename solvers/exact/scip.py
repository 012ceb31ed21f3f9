"""``scip``: exact rows with SCIP (pyscipopt, extra ``scip``) on the convex row QP.

SCIP handles the convex quadratic natively, so no product linearisation is needed:

* ``formulation="soc"`` (default) — with ``q = Σ_i λ_i v_i v_iᵀ`` (eigenvalues
  clipped at 0, exact zeros dropped) introduce ``u_i = √λ_i · v_iᵀz`` and minimise
  ``t`` subject to ``Σ_i u_i² ≤ t``, a second-order cone SCIP recognises; the
  project's prior measurements (60 s, 1 thread, k = d/2) had it prove real-layer
  rows at d = 64 in 9 s median where the plain quadratic form timed out;
* ``formulation="quad"`` — minimise ``t`` subject to ``zᵀqz ≤ t`` as written.

The row is scaled so the warm start's value is 100 (SCIP's feasibility tolerance
is relative to ``max(1, |activity|)``, so a cone constraint on an optimum ≪ 1
would otherwise be loose by up to 1e-6 absolute). Parameters:
``numerics/feastol = 1e-7``, ``limits/gap = gap_tol`` (1e-6), ``limits/absgap =
1e-9``, ``limits/time`` per row, ``randomization/randomseedshift = seed``.
The warm start is added as a primal solution; the dual bound is
``getDualbound()``, nodes ``getNNodes()``.
"""

from __future__ import annotations

import time

import numpy as np

from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows
from solvers.exact.rows import RowOutcome, RowQP
from solvers.registration import register_solver

FORMULATIONS = ("soc", "quad")


def scip_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row with SCIP; see the module docstring."""
    import pyscipopt as ps

    t0 = time.perf_counter()
    m = ps.Model()
    m.hideOutput()
    m.setParam("limits/gap", float(options["gap_tol"]))
    m.setParam("limits/absgap", 1e-9)
    m.setParam("numerics/feastol", 1e-7)  # t within ~1e-7 · max(1, t) of zᵀqz
    m.setParam("randomization/randomseedshift", int(options.get("seed", 0)))
    if time_limit is not None:
        m.setParam("limits/time", float(max(time_limit, 1e-3)))
    d = row.d
    # scale so the start's value is 100: SCIP's tolerances are relative to max(1, |value|)
    unit = (row.value(row.warm) if row.warm is not None else float(np.trace(row.q))) / 100.0
    unit = unit if unit > 0 else 1.0
    q = row.q / unit
    z = [m.addVar(f"z{j}", vtype="B") for j in range(d)]
    t = m.addVar("t", lb=0.0)
    for g, c in zip(row.groups, row.counts):
        m.addCons(ps.quicksum(z[int(j)] for j in g) == c)
    values = []
    if options["formulation"] == "soc":
        lam, vec = np.linalg.eigh(q)
        lam = np.clip(lam, 0.0, None)
        comps = np.flatnonzero(lam > 0.0)
        coef = vec[:, comps] * np.sqrt(lam[comps])[None, :]     # [d, r]
        u = [m.addVar(f"u{i}", lb=None) for i in range(len(comps))]
        for i in range(len(comps)):
            m.addCons(u[i] == ps.quicksum(float(coef[j, i]) * z[j] for j in range(d) if coef[j, i] != 0.0))
        m.addCons(ps.quicksum(ui * ui for ui in u) <= t)
        if row.warm is not None:
            values = list(zip(u, coef.T @ row.warm.astype(float)))
    else:
        nz = np.argwhere(np.triu(q) != 0.0)
        expr = ps.quicksum(float(q[i, j] * (1 if i == j else 2)) * z[i] * z[j] for i, j in nz)
        m.addCons(expr <= t)
    m.setObjective(t, "minimize")
    if row.warm is not None:
        sol = m.createSol()
        for j in range(d):
            m.setSolVal(sol, z[j], float(row.warm[j]))
        for var, v in values:
            m.setSolVal(sol, var, float(v))
        m.setSolVal(sol, t, row.value(row.warm) / unit * (1 + 1e-9) + 1e-12)
        m.addSol(sol, free=True)
    t1 = time.perf_counter()
    m.optimize()
    t2 = time.perf_counter()
    status = m.getStatus()
    nodes = int(m.getNNodes())
    if m.getNSols() == 0 or status not in ("optimal", "timelimit", "gaplimit", "nodelimit", "userinterrupt"):
        return RowOutcome(None, 0.0, nodes=nodes, build_seconds=t1 - t0, solve_seconds=t2 - t1,
                          error=f"SCIP status {status}")
    best = m.getBestSol()
    zval = np.array([m.getSolVal(best, v) for v in z]) > 0.5
    return RowOutcome(zval, float(m.getDualbound()) * unit, float(m.getObjVal()) * unit,
                      proved=status in ("optimal", "gaplimit"), timed_out=status == "timelimit", nodes=nodes,
                      build_seconds=t1 - t0, solve_seconds=t2 - t1)


@register_solver("scip", "exact", "SCIP (pyscipopt) on the convex row QP in second-order-cone form, per row",
                 requires=("pyscipopt",), extra="scip", uses_warm_start=True,
                 default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({"formulation": (str,)}))
def solve_scip(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``formulation`` (soc | quad) plus the common exact settings (:mod:`solvers.exact.rows`)."""
    opts = exact_settings(settings, {"formulation": "soc"})
    if opts["formulation"] not in FORMULATIONS:
        raise ValueError(f"unknown formulation {opts['formulation']!r}; choose from {', '.join(FORMULATIONS)}")
    opts["seed"] = seed
    return solve_rows(problem, warm_start, "scip", scip_row, time_limit, opts)
