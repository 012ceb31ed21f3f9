"""``cbc``: exact rows with COIN-OR CBC (the binary bundled with PuLP) on a linearised row QP.

Same exact linearisations as ``highs`` (:mod:`solvers.exact.formulations`), same
default ``formulation="glover+oa"`` (Glover's compact form plus 16-point outer
approximation cuts): in the project's prior measurements (real-layer rows, 60 s,
1 thread) CBC proved d = 48 in 2.8 s median with Glover against 36 s with
McCormick's ``d²/2`` product columns, and the OA cuts are what gives a bound
above 0 on this project's LLM-like rows (syn d = 32, 30 s: glover+oa proved 1
of 2 where CBC McCormick proved 0 of 2).

The model is written through PuLP and solved by ``PULP_CBC_CMD`` with
``gapRel = gap_tol`` (1e-6), ``gapAbs = 1e-9`` (normalised scale), ``threads``,
the per-row time limit, and the warm start as MIP start (``warmStart=True``).
PuLP does not return CBC's dual bound or node count, so both are read from
CBC's log (``Objective value``, ``Lower bound``, ``Enumerated nodes``, ``Result -``);
a row whose log shows no proof keeps bound 0 unless CBC printed one; a proved row
gets ``objective · (1 − gap_tol) − 1e-9`` (CBC prints no bound then).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings

import numpy as np

from solvers.exact.formulations import FORMULATIONS, LinearModel, build
from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows
from solvers.exact.rows import RowOutcome, RowQP
from solvers.registration import register_solver

_NUM = r"([-+0-9.eE]+|-?inf)"


def parse_cbc_log(text: str) -> dict[str, float | str | None]:
    """Result line, objective, lower bound and node count from a CBC log."""
    def num(label: str) -> float | None:
        m = re.findall(rf"^{label}:?\s+{_NUM}", text, flags=re.MULTILINE)
        return float(m[-1]) if m else None

    result = re.findall(r"^Result - (.*)$", text, flags=re.MULTILINE)
    return {"result": result[-1].strip() if result else None, "objective": num("Objective value"),
            "bound": num("Lower bound"), "nodes": num("Enumerated nodes")}


def _pulp_model(model: LinearModel, row: RowQP):
    import pulp

    prob = pulp.LpProblem("row", pulp.LpMinimize)
    cols = []
    for j in range(model.n_cols):
        lo = None if math.isinf(model.col_lo[j]) else float(model.col_lo[j])
        hi = None if math.isinf(model.col_hi[j]) else float(model.col_hi[j])
        cat = pulp.LpBinary if model.integer[j] and lo == 0 and hi == 1 else (
            pulp.LpInteger if model.integer[j] else pulp.LpContinuous)
        cols.append(pulp.LpVariable(f"x{j}", lo, hi, cat))
    prob += pulp.LpAffineExpression([(cols[j], float(c)) for j, c in enumerate(model.cost) if c != 0.0])
    for r, (lo, hi, idx, val) in enumerate(model.rows()):
        expr = pulp.LpAffineExpression([(cols[int(i)], float(v)) for i, v in zip(idx, val)])
        if lo == hi:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{r}", float(lo))
        elif math.isinf(lo):
            prob += pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{r}", float(hi))
        elif math.isinf(hi):
            prob += pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{r}", float(lo))
        else:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{r}a", float(lo))
            prob += pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{r}b", float(hi))
    if row.warm is not None:
        for var, v in zip(cols, model.start_vector(row.warm, row.q)):
            var.setInitialValue(float(v))
    return prob, cols


def cbc_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row with CBC; see the module docstring."""
    import pulp

    t0 = time.perf_counter()
    formulation = options["formulation"]
    model = build(row, formulation, int(options["oa_points"]))
    with warnings.catch_warnings():   # PuLP 3.x announces its 4.0 API on every variable
        warnings.simplefilter("ignore", DeprecationWarning)
        prob, cols = _pulp_model(model, row)
    fd, log_path = tempfile.mkstemp(prefix="maskbench-cbc-", suffix=".log")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            limit = None if time_limit is None else max(float(time_limit), 0.01)
            cmd = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, gapRel=float(options["gap_tol"]), gapAbs=1e-9,
                                    threads=int(options["threads"]), warmStart=row.warm is not None,
                                    logPath=log_path, options=[f"randomCbcSeed {int(options.get('seed', 0)) + 1}"])
        t1 = time.perf_counter()
        prob.solve(cmd)
        t2 = time.perf_counter()
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            log = parse_cbc_log(fh.read())
    finally:
        os.unlink(log_path)
    values = [v.varValue for v in cols[:row.d]]
    z = None if any(v is None for v in values) else np.asarray(values, dtype=float) > 0.5
    result = log["result"] or ""
    proved = result.startswith("Optimal solution found")
    stopped = "time limit" in result.lower() or "stopped" in result.lower()
    if not proved and not stopped and time_limit is not None and t2 - t1 >= 0.5 * time_limit:
        # CBC stopped by a very short limit (e.g. inside presolve) can claim "Infeasible": no verdict
        return RowOutcome(None, 0.0, timed_out=True, build_seconds=t1 - t0, solve_seconds=t2 - t1)
    if z is None or not (proved or stopped):
        return RowOutcome(None, 0.0, build_seconds=t1 - t0, solve_seconds=t2 - t1,
                          error=f"CBC: {result or pulp.LpStatus.get(prob.status, prob.status)}")
    objective = log["objective"] if log["objective"] is not None else float(pulp.value(prob.objective) or 0.0)
    # CBC prints no bound when it proves optimality; it stopped at relative gap ≤ gap_tol, so this is valid
    proved_bound = objective * (1.0 - float(options["gap_tol"])) - 1e-9
    bound = proved_bound if proved else (log["bound"] if log["bound"] is not None else 0.0)
    return RowOutcome(z, float(bound), float(objective), proved=proved, timed_out=not proved,
                      nodes=int(log["nodes"] or 0), build_seconds=t1 - t0, solve_seconds=t2 - t1)


@register_solver("cbc", "exact", "CBC (bundled with PuLP) on an exact linearisation (Glover / McCormick), per row",
                 requires=("pulp",), uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({"formulation": (str,), "oa_points": (int,)}))
def solve_cbc(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``formulation`` (glover+oa | glover | mccormick+oa | mccormick), ``oa_points`` (16),
    plus the common exact settings (:mod:`solvers.exact.rows`)."""
    opts = exact_settings(settings, {"formulation": "glover+oa", "oa_points": 16})
    if opts["formulation"] not in FORMULATIONS:
        raise ValueError(f"unknown formulation {opts['formulation']!r}; choose from {', '.join(FORMULATIONS)}")
    opts["seed"] = seed
    return solve_rows(problem, warm_start, "cbc", cbc_row, time_limit, opts)
