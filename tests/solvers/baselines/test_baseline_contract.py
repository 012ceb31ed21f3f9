"""The contract every baseline must pass: feasible verified masks, repeatable ties, no warm start.

Parametrised over ``BASELINES`` so each baseline meets every clause; what is particular to one
baseline is in its own file (``test_wanda.py``, ``test_sparsegpt.py``, ...).
"""

from __future__ import annotations

import pytest
import torch

from solvers import NM, MaskProblem, PerRow, check_feasible, solve
from solvers.synthetic import generate

BASELINES = ["magnitude", "wanda", "ria", "sparsegpt"]


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("pattern", [PerRow(13), NM(2, 4), NM(4, 8)], ids=["per-row", "2:4", "4:8"])
def test_baselines_feasible_and_verified(name, pattern):
    problem = generate(family="small", d_in=32, d_out=6, seed=1).with_pattern(pattern)
    result = solve(name, problem)
    check_feasible(problem, result.mask)
    assert result.verified and result.status == "feasible"
    assert result.objective == pytest.approx(float(result.row_objectives.sum()), rel=1e-12)


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("pattern", [PerRow(3), NM(2, 4)], ids=["per-row", "2:4"])
def test_baselines_deterministic_under_ties(name, pattern):
    # all weights and input norms equal: every score ties; result must be repeatable
    problem = MaskProblem(torch.ones(3, 8), torch.eye(8, dtype=torch.float64), pattern)
    first = solve(name, problem).mask
    for _ in range(3):
        assert torch.equal(solve(name, problem).mask, first)
    check_feasible(problem, first)


def test_baselines_refuse_warm_start():
    problem = generate(family="tiny", seed=0)
    with pytest.raises(ValueError, match="does not take a warm start"):
        solve("wanda", problem, warm_start="magnitude")
