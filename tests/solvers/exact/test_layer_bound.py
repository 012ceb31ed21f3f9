"""Solver ``bound``: every certified row bound lies below the proven optimum (brute force, sdpbb)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from solvers import generate
from solvers.exact.layer_bound import shor_row_bound
from solvers.exact.rows import RowQP
from tests.solvers.conftest import SMALL_CASES, feasible_points

CASES = SMALL_CASES


def _below(bounds: torch.Tensor, optimum: torch.Tensor) -> bool:
    return bool((bounds <= optimum * (1 + 1e-9) + 1e-12).all())


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("steps", [5, 40])
def test_bounds_below_brute_force_optimum(name, steps):
    problem = CASES[name]()
    optimum = solvers.solve("bruteforce", problem, workers=1)
    result = solvers.solve("bound", problem, "wanda", workers=1, newton_steps=steps)
    assert _below(result.row_lower_bounds, optimum.row_objectives)
    assert bool((result.row_lower_bounds >= 0).all())
    assert result.lower_bound == pytest.approx(float(result.row_lower_bounds.sum()), rel=1e-12)
    if steps == 40:  # the bound is not vacuous: most of the optimum is certified
        assert result.lower_bound >= 0.5 * optimum.objective


def test_bound_keeps_the_start_and_certifies_its_gap():
    problem = generate(family="small", d_in=32, d_out=4, seed=1)
    start = solvers.solve("wanda+swap", problem)
    result = solvers.solve("bound", problem, start, workers=1)
    assert torch.equal(result.mask, start.mask) and result.objective == start.objective
    assert result.status == "feasible" and 0.0 < result.lower_bound <= result.objective


def test_bounds_below_sdpbb_optimum_on_larger_rows():
    for pattern in ("per-row", "2:4"):
        problem = generate(family="small", d_in=32, d_out=3, pattern=pattern, seed=4)
        optimum = solvers.solve("sdpbb", problem, workers=1)
        assert optimum.status == "optimal"
        result = solvers.solve("bound", problem, workers=1)
        assert _below(result.row_lower_bounds, optimum.row_objectives)


def test_groups_that_are_pruned_entirely_enter_as_a_constant():
    """A reduced row can have a group whose free columns must all be pruned."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(20, 8, generator=gen, dtype=torch.float64)
    q = (x.T @ x).numpy()
    q = q / np.mean(np.diag(q))
    groups, counts = [np.arange(0, 2), np.arange(2, 8)], [2, 3]
    row = RowQP(0, q, 1.0, groups, counts)
    best = min(float(z @ q @ z) for z in feasible_points(groups, counts, 8))
    bound = shor_row_bound(row, None, 40)
    assert 0.0 < bound <= best * (1 + 1e-9)


def test_settings_are_checked():
    problem = generate(family="tiny", d_in=12, d_out=2, seed=0)
    with pytest.raises(ValueError):
        solvers.solve("bound", problem, "wanda", newton_steps=-1)
    with pytest.raises(ValueError):
        solvers.solve("bound", problem, "wanda", node_limit=3)
