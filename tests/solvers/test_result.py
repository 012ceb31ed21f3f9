"""Solver results (solvers.result): re-verification by make_result, the gap, the JSON summary."""

from __future__ import annotations

import json
import math

import pytest
import torch

from solvers import InfeasibleMaskError, MaskProblem, PerRow, make_result, row_objectives
from solvers.result import ERROR, FEASIBLE, SolveResult, error_result


def _diagonal_problem() -> MaskProblem:
    """Diagonal G: the loss of a row is Σ_pruned w_j² G_jj, so every objective below is exact by hand."""
    weight = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 1.0, 1.0]], dtype=torch.float64)
    return MaskProblem(weight, torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)), PerRow(2))


def test_make_result_recomputes_the_objective_from_the_mask():
    problem = _diagonal_problem()
    mask = torch.tensor([[False, False, True, True], [True, True, False, False]])
    res = make_result(problem, mask, "hand")
    # row 0 prunes columns 0, 1: 1²·1 + 2²·2 = 9; row 1 prunes 2, 3: 1·3 + 1·4 = 7
    assert res.row_objectives.tolist() == [9.0, 7.0] and res.objective == 16.0
    assert res.verified and res.status == FEASIBLE and torch.equal(res.mask, mask)
    assert res.row_objectives.dtype == torch.float64
    assert torch.equal(res.row_objectives, row_objectives(problem, mask))


def test_make_result_refuses_bad_masks_and_statuses():
    problem = _diagonal_problem()
    with pytest.raises(InfeasibleMaskError, match="row 0"):
        make_result(problem, torch.tensor([[True, True, True, False], [True, True, False, False]]), "hand")
    with pytest.raises(ValueError, match="unknown status 'done'"):
        make_result(problem, torch.tensor([[False, False, True, True]] * 2), "hand", status="done")


def test_a_lower_bound_above_the_objective_is_clipped_and_reported():
    problem = _diagonal_problem()
    mask = torch.tensor([[False, False, True, True]] * 2)        # objective 9 + 0.75 = 9.75
    res = make_result(problem, mask, "hand", lower_bound=11.0)
    assert res.lower_bound == res.objective == 9.75
    assert "reported lower bound 11 exceeds verified objective 9.75" in res.message
    fine = make_result(problem, mask, "hand", lower_bound=9.75 * (1 + 1e-12))   # within rounding: kept
    assert fine.lower_bound == 9.75 * (1 + 1e-12) and fine.message == ""


@pytest.mark.parametrize("objective, lower_bound, gap", [
    (10.0, None, None),            # no bound, no gap
    (10.0, 7.5, 0.25),             # (objective − bound) / objective
    (10.0, 10.0, 0.0),
    (10.0, 12.0, 0.0),             # a bound above the objective never gives a negative gap
    (0.0, 0.0, 0.0),               # both zero: proved optimal at zero loss
    (math.nan, 1.0, None),         # failed solve
])
def test_gap(objective, lower_bound, gap):
    res = SolveResult("x", FEASIBLE, None, objective, None, lower_bound=lower_bound)
    assert res.gap == (None if gap is None else pytest.approx(gap, rel=1e-15))


def test_summary_is_json_ready_and_leaves_out_the_mask():
    problem = _diagonal_problem()
    res = make_result(problem, torch.tensor([[False, False, True, True]] * 2), "hand", lower_bound=8.2,
                      settings={"seed": 0}, extra={"swaps": 3})
    summary = json.loads(json.dumps(res.summary()))
    assert "mask" not in summary and "row_objectives" not in summary
    assert summary["objective"] == 9.75 and summary["lower_bound"] == 8.2
    assert summary["gap"] == pytest.approx((9.75 - 8.2) / 9.75, rel=1e-12)
    assert summary["settings"] == {"seed": 0} and summary["extra"] == {"swaps": 3} and summary["verified"]


def test_error_result_has_no_mask_and_a_nan_objective():
    res = error_result("highs", "backend exploded")
    assert res.status == ERROR and res.mask is None and math.isnan(res.objective)
    assert res.gap is None and res.message == "backend exploded" and not res.verified


def test_library_versions_are_read_once_and_handed_out_as_copies(monkeypatch):
    import importlib.metadata as md

    from solvers import result

    result._library_versions.cache_clear()
    calls = []
    real = md.version
    monkeypatch.setattr(md, "version", lambda name: calls.append(name) or real(name))
    first = result.library_versions()
    n = len(calls)
    first["torch"] = "edited"
    second = result.library_versions()
    assert len(calls) == n > 0
    assert second["torch"] == torch.__version__
