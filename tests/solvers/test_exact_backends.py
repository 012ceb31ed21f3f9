"""Every exact backend against brute force, time limits, availability of the optional ones."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from exact_cases import adversarial_case, all_cases

from solvers import available_solvers, generate, solve
from solvers.pattern import NM

BACKENDS = {"highs": "highspy", "cbc": "pulp", "scip": "pyscipopt", "gurobi": "gurobipy", "sdpbb": "torch"}
ROWS = {"cbc": 13, "scip": 13}   # slower per row: 4 × 13 + 2 × 6 = 64 rows, still ≥ 50


@pytest.fixture(scope="module")
def reference():
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


def test_process_pool_gives_the_same_rows():
    problem = adversarial_case(NM(2, 4))
    one = solve("highs", problem, warm_start="wanda", workers=1)
    two = solve("highs", problem, warm_start="wanda", workers=2)
    assert one.status == two.status == "optimal"
    assert torch.allclose(one.row_objectives, two.row_objectives, rtol=1e-12)
    assert two.extra["workers"] == 2


def test_default_warm_start_is_used():
    problem = generate(family="tiny", d_in=8, d_out=2, seed=0)
    res = solve("highs", problem, workers=1)
    assert res.warm_start in ("wanda+swap", "wanda")
    assert res.objective <= res.warm_start_objective * (1 + 1e-12)


def test_unknown_formulation_is_refused():
    problem = generate(family="tiny", d_in=8, d_out=1, seed=0)
    with pytest.raises(ValueError, match="formulation"):
        solve("highs", problem, warm_start="wanda", formulation="nope")


@pytest.mark.parametrize("solver,extra,module", [("scip", "scip", "pyscipopt"), ("gurobi", "gurobi", "gurobipy")])
def test_missing_optional_backend_names_its_extra(monkeypatch, solver, extra, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    info = {s.name: s for s in available_solvers()}[solver]
    assert not info.available and f".[{extra}]" in info.reason and module in info.reason


def test_gurobi_size_limit_is_reported_not_raised():
    pytest.importorskip("gurobipy")
    problem = generate(family="layer", d_in=256, d_out=1, seed=0)
    res = solve("gurobi", problem, warm_start="wanda", workers=1, time_limit=5)
    if res.status == "error":      # the pip wheel's size-limited licence
        assert "unavailable for this size" in res.message
        assert res.mask is not None and res.objective == pytest.approx(res.warm_start_objective)
    else:                          # a full licence
        assert res.status in ("optimal", "time_limit")


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_tiny_row_time_limit_stops_inside_the_backend(backend, medium):
    pytest.importorskip(BACKENDS[backend])
    problem, exact = medium
    res = solve(backend, problem, warm_start="wanda", workers=1, row_time_limit=0.002)
    assert res.status in ("time_limit", "optimal"), res.message   # a very fast machine may finish
    assert bool(problem.pattern.is_feasible(res.mask).all())
    assert torch.all(res.row_lower_bounds <= exact.row_objectives * (1 + 1e-9))
    assert torch.all(res.row_objectives >= exact.row_objectives * (1 - 1e-9))
