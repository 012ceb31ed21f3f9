"""Wanda (Sun, Liu, Bair, Kolter, ICLR 2024), per output row.

Score ``S_ij = |W_ij| · ‖X_j‖₂ = |W_ij| · sqrt(G_jj)``; the ``k`` lowest scores of
each row are pruned (N:M: the ``m − n`` lowest of each group), stable ties. Since
``S_ij² = W_ij² G_jj`` is exactly the loss of pruning ``W_ij`` alone when ``G`` is
replaced by its diagonal, Wanda's mask is the exact optimum of that diagonal
surrogate ``Σ_i Σ_{j pruned} W_ij² G_jj``. No weight update.
"""

from __future__ import annotations

import torch

from solvers.baselines.selection import input_norms, mask_from_scores
from solvers.registration import register_solver
from solvers.result import make_result


def wanda_scores(problem) -> torch.Tensor:
    return problem.weight.to(torch.float64).abs() * input_norms(problem.gram)[None, :]


@register_solver("wanda", "baseline", "|W_ij|·sqrt(G_jj), lowest pruned per row (diagonal-surrogate optimum)")
def solve_wanda(problem, warm_start, time_limit, seed):
    mask = mask_from_scores(wanda_scores(problem), problem.pattern)
    return make_result(problem, mask, "wanda")
