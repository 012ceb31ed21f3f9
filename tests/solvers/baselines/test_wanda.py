"""Wanda (solvers.baselines.wanda): optimal for the diagonal surrogate w_j² G_jj, per-row and N:M."""

from __future__ import annotations

import itertools

import pytest
import torch

from solvers import solve
from solvers.synthetic import generate


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
