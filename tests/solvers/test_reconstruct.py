"""The least-squares refit of kept weights (solvers/reconstruct.py): exact solution, CG agreement, guarantees."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.baselines.sparsegpt import sparsegpt_mask
from solvers.objective import residual_row_objectives
from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem
from solvers.reconstruct import damped_gram, refit, weight_update
from solvers.synthetic import llm_like_activations


def _problem(pattern_of, d_in: int = 48, d_out: int = 10, tokens: int = 200, seed: int = 0) -> MaskProblem:
    g = torch.Generator().manual_seed(seed)
    x = llm_like_activations(tokens, d_in, g)
    x[:, 3] = 0.0                                                         # a dead input
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    return MaskProblem.from_activations(w, x, pattern_of(d_in))


def _damped_loss(problem, weights, percdamp=0.01) -> float:
    h = damped_gram(problem.gram, percdamp)
    r = problem.weight.to(torch.float64) - weights
    return float(torch.einsum("ij,jk,ik->", r, h, r))


@pytest.mark.parametrize("pattern_of", [lambda d: PerRow(d // 2), lambda d: NM(2, 4)])
def test_direct_refit_solves_each_rows_normal_equations(pattern_of):
    problem = _problem(pattern_of)
    mask = solvers.solve("wanda", problem).mask
    fit = refit(problem, mask, method="direct")
    h = damped_gram(problem.gram, 0.01)
    w = problem.weight.to(torch.float64)
    for i in range(problem.d_out):
        k = torch.nonzero(mask[i]).flatten()
        expected = torch.linalg.solve(h[k][:, k], h[k] @ w[i])             # H_KK v = H_K· w
        torch.testing.assert_close(fit.weights[i, k], expected, rtol=1e-8, atol=1e-10)
        assert (fit.weights[i][~mask[i]] == 0).all()
    rows = residual_row_objectives(problem.gram, w - fit.weights)
    torch.testing.assert_close(fit.row_objectives, rows, rtol=1e-9, atol=0)


def test_cg_agrees_with_direct_and_never_loses_to_the_mask():
    problem = _problem(lambda d: PerRow(d // 2))
    result = solvers.solve("wanda", problem)
    direct = refit(problem, result.mask, method="direct")
    cg = refit(problem, result.mask, method="cg", tol=1e-10, max_iters=2000)
    assert cg.relative_residual <= 1e-10
    assert cg.objective == pytest.approx(direct.objective, rel=1e-6)
    torch.testing.assert_close(cg.weights, direct.weights, rtol=1e-5, atol=1e-7)
    assert (cg.row_objectives <= result.row_objectives * (1 + 1e-12)).all()
    early = refit(problem, result.mask, method="cg", max_iters=2)      # stopped early: still no worse
    assert early.iterations == 2 and (early.row_objectives <= result.row_objectives * (1 + 1e-12)).all()


def test_refit_beats_sparsegpts_own_update_on_its_own_mask():
    """Both minimise the same damped loss on SparseGPT's mask; the refit is the minimum over all kept weights."""
    problem = _problem(lambda d: PerRow(d // 2), seed=1)
    keep, updated = sparsegpt_mask(problem.weight, problem.gram, problem.pattern)
    fit = refit(problem, keep)
    assert _damped_loss(problem, fit.weights) <= _damped_loss(problem, updated) * (1 + 1e-12)


def test_weight_update_choices():
    problem = _problem(lambda d: PerRow(d // 2))
    plain = solvers.solve("wanda", problem)
    assert weight_update(problem, plain) == (None, None, None)
    weights, loss, label = weight_update(problem, plain, reconstruct=True)
    assert label == "refit" and loss == plain.extra["objective_reconstructed"] and loss < plain.objective
    assert torch.equal(weights != 0, plain.mask)
    sgpt = solvers.solve("sparsegpt", problem, update_weights=True)
    weights, loss, label = weight_update(problem, sgpt)
    assert label == "sparsegpt" and torch.equal(weights, sgpt.weights)
    assert loss == sgpt.extra["objective_with_weight_update"]


def test_bad_method_is_refused():
    problem = _problem(lambda d: PerRow(d // 2))
    with pytest.raises(ValueError, match="refit method"):
        refit(problem, solvers.solve("wanda", problem).mask, method="qr")
