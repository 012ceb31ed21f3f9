"""SparseGPT (solvers.baselines.sparsegpt): OBS update, saliency, row balance across blocks."""

from __future__ import annotations

import torch

from solvers import MaskProblem, solve
from solvers.synthetic import generate


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


def test_inverse_cholesky_in_place_matches_the_released_chain():
    """LAPACK in place gives the released ``cholesky(cholesky_inverse(cholesky(H)), upper=True)``, in ``h``."""
    import pytest

    from solvers.baselines.sparsegpt import inverse_cholesky_upper_

    x = torch.randn(200, 150, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = x.T @ x + 0.1 * torch.eye(150, dtype=torch.float64)
    released = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    work = h.clone()
    u = inverse_cholesky_upper_(work)
    assert u.data_ptr() == work.data_ptr()  # no second matrix
    torch.testing.assert_close(u, released, rtol=1e-9, atol=1e-12)
    assert torch.equal(u, torch.triu(u))
    torch.testing.assert_close(u.T @ u, torch.linalg.inv(h), rtol=1e-8, atol=1e-10)
    singular = torch.zeros(4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="not positive definite"):
        inverse_cholesky_upper_(singular)
