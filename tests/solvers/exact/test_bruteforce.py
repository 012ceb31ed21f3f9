"""The brute-force exact solver against plain enumeration; its size limit."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from solvers import PerRow, generate, solve
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


@pytest.mark.parametrize("case", ["adv-per-row", "adv-2:4", "syn-per-row", "syn-2:4"])
def test_bruteforce_matches_naive_enumeration(case, adversarial_case, synthetic_cases):
    nm = case.endswith("2:4")
    if case.startswith("adv"):
        problem = adversarial_case(NM(2, 4) if nm else None)
    else:
        problem = synthetic_cases(d_in=8, rows=4, seeds=(3,))[1 if nm else 0]
    res = solve("bruteforce", problem, warm_start="wanda", workers=1)
    assert res.status == "optimal", res.message
    for i in range(problem.d_out):
        opt = naive_row_optimum(problem, i)
        assert res.row_objectives[i] == pytest.approx(opt, rel=1e-9, abs=1e-12 * (1 + abs(opt)))
        assert res.row_lower_bounds[i] == pytest.approx(opt, rel=1e-9, abs=1e-12 * (1 + abs(opt)))
    assert res.lower_bound == pytest.approx(res.objective, rel=1e-9)
    assert res.gap == pytest.approx(0.0, abs=1e-9)


def test_adversarial_case_finds_the_cancelling_pair(adversarial_case):
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


def test_raised_max_subsets_enumerates_lazily_and_honours_the_time_limit():
    """C(40, 20) ≈ 1.4e11 sets: materialising them would exhaust memory; the limit must stop it."""
    import resource
    import time

    problem = generate(family="small", d_in=40, d_out=1, seed=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = solve("bruteforce", problem, warm_start="wanda", time_limit=1.0, max_subsets=10**12, workers=1)
    elapsed = time.perf_counter() - t0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert res.status == "time_limit" and res.mask is not None
    assert res.objective <= solve("wanda", problem).objective * (1 + 1e-12)
    assert elapsed < 30.0  # generous for a shared machine; without the fix it never returns
    assert grown_mb < 1024
