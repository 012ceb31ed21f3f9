"""The row pool (solvers.exact.row_pool): settings, worker processes, failed and unproved rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solvers import InfeasibleMaskError, generate, solve
from solvers.exact.row_pool import exact_settings, solve_rows
from solvers.exact.rows import RowOutcome
from solvers.pattern import NM
from solvers.registry import resolve_warm_start


def test_process_pool_gives_the_same_rows(adversarial_case):
    problem = adversarial_case(NM(2, 4))
    one = solve("highs", problem, warm_start="wanda", workers=1)
    two = solve("highs", problem, warm_start="wanda", workers=2)
    assert one.status == two.status == "optimal"
    assert torch.allclose(one.row_objectives, two.row_objectives, rtol=1e-12)
    assert two.extra["workers"] == 2


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
    ws = resolve_warm_start(problem, "wanda")
    res = solve_rows(problem, ws, "fake", _failing_row_solver, None, exact_settings({"workers": 1}, {}))
    assert res.status == "error" and "backend exploded" in res.message
    assert torch.equal(res.mask, ws.mask)
    out = solve_rows(problem, ws, "fake", _unproved_row_solver, None, exact_settings({"workers": 1}, {}))
    assert out.status == "time_limit" and out.nodes > 0 and out.nodes % 3 == 0
    # negative bounds clip to the trivial 0 (rows that the reduction settles keep their exact value)
    assert torch.all(out.row_lower_bounds >= 0) and bool((out.row_lower_bounds == 0).any())
    np.testing.assert_allclose(out.objective, ws.objective)


def test_rows_past_the_deadline_are_not_even_reduced(monkeypatch):
    """A spent time limit returns every row at once with the trivial bound: the column reduction (an
    eigensolve per row, ~40 ms at d = 576) must not run first, or a time limit overshoots by that much."""
    import solvers.exact.row_pool as pool

    problem = generate(family="tiny", d_in=8, d_out=3, seed=2)
    ws = resolve_warm_start(problem, "wanda")
    reduced = []
    monkeypatch.setattr(pool, "reduce_row", lambda row: reduced.append(row) or (row, np.arange(row.d), 1.0))
    res = solve_rows(problem, ws, "fake", _unproved_row_solver, 1e-9, exact_settings({"workers": 1}, {}))
    assert reduced == [] and res.status == "time_limit"
    assert torch.equal(res.mask, ws.mask) and float(res.lower_bound) == 0.0
