"""The contract every exact backend must pass: brute-force optima, valid bounds, time limits, extras.

One parametrised test per clause rather than one file per backend: the clauses are the same for
every backend, so a new backend is one line in ``BACKENDS`` and cannot skip a clause, and the
brute-force reference (the slow part) is computed once for all of them. What is particular to a
backend lives in its own file (``test_highs.py``, ``test_gurobi.py``, ``test_sdpbb.py``, ...).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from solvers import available_solvers, generate, solve

BACKENDS = {"highs": "highspy", "cbc": "pulp", "scip": "pyscipopt", "gurobi": "gurobipy", "sdpbb": "torch"}
ROWS = {"cbc": 13, "scip": 13}   # slower per row: 4 × 13 + 2 × 6 = 64 rows, still ≥ 50


@pytest.fixture(scope="module")
def reference(all_cases):
    """Brute-force optima for every case and both row counts used below."""
    cases = {n: all_cases(rows=n) for n in {25, *ROWS.values()}}
    return {n: [(p, solve("bruteforce", p, warm_start="wanda", workers=1)) for p in ps] for n, ps in cases.items()}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backend_equals_bruteforce(backend, reference):
    pytest.importorskip(BACKENDS[backend])
    n_rows = 0
    for problem, ref in reference[ROWS.get(backend, 25)]:
        res = solve(backend, problem, warm_start="wanda", workers=1)
        assert res.status == "optimal", (problem.pattern, res.extra.get("row_status_counts"), res.message)
        scale = float(ref.row_objectives.abs().max()) + 1e-300
        assert torch.allclose(res.row_objectives, ref.row_objectives, rtol=1e-7, atol=1e-9 * scale)
        assert torch.all(res.row_lower_bounds <= ref.row_objectives * (1 + 1e-9) + 1e-12 * scale)
        assert torch.all(res.row_lower_bounds >= ref.row_objectives * (1 - 2e-6) - 1e-9 * scale)
        assert res.lower_bound == pytest.approx(float(res.row_lower_bounds.sum()))
        assert res.nodes is not None and res.build_seconds > 0 and res.solve_seconds >= 0
        n_rows += problem.d_out
    assert n_rows >= 50


@pytest.fixture(scope="module")
def medium():
    """Rows of d = 20 (brute force 1.8e5 sets each) that no backend solves in a millisecond."""
    problem = generate(family="tiny", d_in=20, d_out=3, seed=4)
    return problem, solve("bruteforce", problem, warm_start="wanda", workers=1)


@pytest.mark.parametrize("backend", ["bruteforce", *sorted(BACKENDS)])
def test_tiny_time_limit_gives_a_feasible_mask_and_a_valid_bound(backend, medium):
    if backend in BACKENDS:
        pytest.importorskip(BACKENDS[backend])
    problem, exact = medium
    res = solve(backend, problem, warm_start="wanda", workers=1, time_limit=1e-3)
    assert res.status == "time_limit", res.message
    assert res.verified and bool(problem.pattern.is_feasible(res.mask).all())
    assert res.lower_bound <= exact.objective * (1 + 1e-9)
    assert torch.all(res.row_lower_bounds <= exact.row_objectives * (1 + 1e-9))
    assert res.objective >= exact.objective * (1 - 1e-9)


@pytest.mark.parametrize("solver,extra,module", [("scip", "scip", "pyscipopt"), ("gurobi", "gurobi", "gurobipy")])
def test_missing_optional_backend_names_its_extra(monkeypatch, solver, extra, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    info = {s.name: s for s in available_solvers()}[solver]
    assert not info.available and f".[{extra}]" in info.reason and module in info.reason


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_tiny_row_time_limit_stops_inside_the_backend(backend, medium):
    pytest.importorskip(BACKENDS[backend])
    problem, exact = medium
    res = solve(backend, problem, warm_start="wanda", workers=1, row_time_limit=0.002)
    assert res.status in ("time_limit", "optimal"), res.message   # a very fast machine may finish
    assert bool(problem.pattern.is_feasible(res.mask).all())
    assert torch.all(res.row_lower_bounds <= exact.row_objectives * (1 + 1e-9))
    assert torch.all(res.row_objectives >= exact.row_objectives * (1 - 1e-9))
