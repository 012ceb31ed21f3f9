"""The brute-force exact solver and the shared per-row machinery."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from exact_cases import adversarial_case, synthetic_cases

from solvers import InfeasibleMaskError, PerRow, generate, solve
from solvers.exact.row_pool import exact_settings, solve_rows
from solvers.exact.rows import RowOutcome
from solvers.pattern import NM


def naive_row_optimum(problem, i: int) -> float:
    """min over every feasible pruning set of r_iᵀ G r_i, by plain itertools."""
    g = problem.gram.double()
    w = problem.weight[i].double()
    d = problem.d_in
    pat = problem.pattern
    if isinstance(pat, NM):
        per_group = [list(itertools.combinations(range(s, s + pat.m), pat.pruned_per_group))
                     for s in range(0, d, pat.m)]
        sets = (sum(choice, ()) for choice in itertools.product(*per_group))
    else:
        sets = itertools.combinations(range(d), pat.k)
    best = math.inf
    for s in sets:
        r = torch.zeros(d, dtype=torch.float64)
        r[list(s)] = w[list(s)]
        best = min(best, float(r @ g @ r))
    return best


@pytest.mark.parametrize("problem", [adversarial_case(), adversarial_case(NM(2, 4)),
                                     synthetic_cases(d_in=8, rows=4, seeds=(3,))[0],
                                     synthetic_cases(d_in=8, rows=4, seeds=(3,))[1]],
                         ids=["adv-per-row", "adv-2:4", "syn-per-row", "syn-2:4"])
def test_bruteforce_matches_naive_enumeration(problem):
    res = solve("bruteforce", problem, warm_start="wanda", workers=1)
    assert res.status == "optimal", res.message
    for i in range(problem.d_out):
        opt = naive_row_optimum(problem, i)
        assert res.row_objectives[i] == pytest.approx(opt, rel=1e-9, abs=1e-12 * (1 + abs(opt)))
        assert res.row_lower_bounds[i] == pytest.approx(opt, rel=1e-9, abs=1e-12 * (1 + abs(opt)))
    assert res.lower_bound == pytest.approx(res.objective, rel=1e-9)
    assert res.gap == pytest.approx(0.0, abs=1e-9)


def test_adversarial_case_finds_the_cancelling_pair():
    problem = adversarial_case(PerRow(2))
    res = solve("bruteforce", problem, warm_start="wanda", workers=1)
    # pruning the duplicated pair (8, 9) with opposite weights costs exactly 0
    assert float(res.row_objectives.max()) == pytest.approx(0.0, abs=1e-9)
    assert res.status == "optimal"


def test_bruteforce_refuses_large_rows_with_a_clear_error():
    problem = generate(family="small", d_in=64, d_out=1, seed=0)
    res = solve("bruteforce", problem, warm_start="wanda")
    assert res.status == "error" and res.mask is None
    assert "max_subsets" in res.message and "highs" in res.message


def test_trivial_rows_need_no_search():
    for k in (0, 12):
        problem = generate(family="tiny", d_in=12, d_out=3, seed=1).with_pattern(PerRow(k))
        res = solve("bruteforce", problem, warm_start="wanda", workers=1, max_subsets=1)
        assert res.status == "optimal"
        assert int((~res.mask).sum()) == 3 * k


def test_bad_settings_and_infeasible_warm_start_raise():
    problem = generate(family="tiny", d_in=8, d_out=2, seed=0)
    with pytest.raises(ValueError, match="unknown setting"):
        solve("bruteforce", problem, warm_start="wanda", workerz=1)
    with pytest.raises(ValueError, match="workers"):
        solve("bruteforce", problem, warm_start="wanda", workers=0)
    bad = torch.ones(problem.d_out, problem.d_in, dtype=torch.bool)
    with pytest.raises(InfeasibleMaskError):
        solve("bruteforce", problem, warm_start=bad)


def _failing_row_solver(row, time_limit, options):
    raise RuntimeError("backend exploded")


def _unproved_row_solver(row, time_limit, options):
    z = row.warm.copy()
    return RowOutcome(z, -5.0, row.value(z), proved=False, timed_out=True, nodes=3)


def test_backend_failure_becomes_an_error_result_with_the_warm_mask():
    problem = generate(family="tiny", d_in=8, d_out=3, seed=2)
    from solvers.registry import resolve_warm_start

    ws = resolve_warm_start(problem, "wanda")
    res = solve_rows(problem, ws, "fake", _failing_row_solver, None, exact_settings({"workers": 1}, {}))
    assert res.status == "error" and "backend exploded" in res.message
    assert torch.equal(res.mask, ws.mask)
    out = solve_rows(problem, ws, "fake", _unproved_row_solver, None, exact_settings({"workers": 1}, {}))
    assert out.status == "time_limit" and out.nodes > 0 and out.nodes % 3 == 0
    # negative bounds clip to the trivial 0 (rows that the reduction settles keep their exact value)
    assert torch.all(out.row_lower_bounds >= 0) and bool((out.row_lower_bounds == 0).any())
    np.testing.assert_allclose(out.objective, ws.objective)
