import itertools

import pytest
import torch

from solvers import NM, MaskProblem, PerRow, check_feasible, solve
from solvers.baselines.ria import ria_scores
from solvers.baselines.selection import mask_from_scores
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


def test_ties_prune_lower_column_first():
    mask = mask_from_scores(torch.ones(2, 6), PerRow(2))
    assert mask.tolist() == [[False, False, True, True, True, True]] * 2
    mask = mask_from_scores(torch.ones(1, 8), NM(2, 4))
    assert mask.tolist() == [[False, False, True, True, False, False, True, True]]


@pytest.mark.parametrize("seed", range(8))
def test_wanda_is_optimal_for_the_diagonal_surrogate(seed):
    problem = generate(family="tiny", d_in=10, d_out=3, seed=seed, dead_fraction=0.1 * (seed % 2))
    k = problem.pruned_per_row
    mask = solve("wanda", problem).mask
    diag = torch.diagonal(problem.gram)
    for i in range(problem.d_out):
        cost = problem.weight[i] ** 2 * diag
        best = min(float(cost[list(c)].sum()) for c in itertools.combinations(range(problem.d_in), k))
        got = float(cost[~mask[i]].sum())
        assert got == pytest.approx(best, rel=1e-12, abs=1e-300)


def test_wanda_nm_is_optimal_per_group_for_the_diagonal_surrogate():
    problem = generate(family="tiny", d_in=16, d_out=4, seed=3, pattern="2:4")
    mask = solve("wanda", problem).mask
    cost = problem.weight ** 2 * torch.diagonal(problem.gram)[None, :]
    groups = cost.reshape(4, 4, 4)
    best = groups.sort(dim=2).values[:, :, :2].sum()
    assert float(cost[~mask].sum()) == pytest.approx(float(best), rel=1e-12)


def test_magnitude_prunes_smallest_absolute_weights():
    w = torch.tensor([[0.5, -3.0, 0.1, 2.0], [-0.2, 0.3, -4.0, 1.0]])
    problem = MaskProblem(w, torch.eye(4, dtype=torch.float64), PerRow(2))
    assert solve("magnitude", problem).mask.tolist() == [[False, True, False, True], [False, False, True, True]]


def test_ria_matches_the_formula():
    problem = generate(family="tiny", d_in=8, d_out=3, seed=0)
    w = problem.weight.abs()
    norms = torch.diagonal(problem.gram).sqrt()
    manual = (w / w.sum(0, keepdim=True) + w / w.sum(1, keepdim=True)) * norms.pow(0.5)
    assert torch.allclose(ria_scores(problem), manual, rtol=1e-12)


def test_sparsegpt_reports_both_objectives_and_update_helps():
    problem = generate(family="small", d_in=64, d_out=8, seed=2)
    result = solve("sparsegpt", problem)
    with_update = result.extra["objective_with_weight_update"]
    assert 0 < with_update < result.objective  # the OBS update reduces the error of the same mask
    # single block, diagonal G, no damping: OBS saliency w²/[H⁻¹]_jj = w² G_jj is Wanda's score squared
    diag_problem = MaskProblem(problem.weight, torch.diag(torch.diagonal(problem.gram)), problem.pattern)
    undamped = solve("sparsegpt", diag_problem, percdamp=0.0)
    assert torch.equal(undamped.mask, solve("wanda", diag_problem).mask)


def test_sparsegpt_row_balanced_across_blocks_and_dead_inputs():
    problem = generate(family="layer", d_in=300, d_out=4, seed=0, dead_fraction=0.05)
    result = solve("sparsegpt", problem)
    assert ((~result.mask).sum(1) == problem.pruned_per_row).all()
    dead = torch.diagonal(problem.gram) == 0
    assert (~result.mask[:, dead]).all()  # zero-cost prunes are taken first


def test_baselines_refuse_warm_start():
    problem = generate(family="tiny", seed=0)
    with pytest.raises(ValueError, match="does not take a warm start"):
        solve("wanda", problem, warm_start="magnitude")
