"""Wanda (Sun, Liu, Bair, Kolter, ICLR 2024), per output row.

Score ``S_ij = |W_ij| · ‖X_j‖₂ = |W_ij| · sqrt(G_jj)``; the ``k`` lowest scores of
each row are pruned (N:M: the ``m − n`` lowest of each group), stable ties. Since
``S_ij² = W_ij² G_jj`` is exactly the loss of pruning ``W_ij`` alone when ``G`` is
replaced by its diagonal, Wanda's mask is the exact optimum of that diagonal
surrogate ``Σ_i Σ_{j pruned} W_ij² G_jj``. No weight update.

Peak memory: the keep-mask (``d_out · d_in`` bytes) plus one block of rows' float64 scores and
selection temporaries (:mod:`solvers.baselines.selection`, ≈ 170 MB), plus the verification of
:func:`solvers.result.make_result`.
"""

from __future__ import annotations

import torch

from solvers.baselines.selection import input_norms, mask_from_row_scores
from solvers.registration import register_solver
from solvers.result import make_result


def wanda_scores(problem, rows: slice = slice(None)) -> torch.Tensor:
    """Scores of ``rows`` (default all) in float64."""
    return problem.weight[rows].to(torch.float64).abs() * input_norms(problem.gram)[None, :]


@register_solver("wanda", "baseline", "|W_ij|·sqrt(G_jj), lowest pruned per row (diagonal-surrogate optimum)")
def solve_wanda(problem, warm_start, time_limit, seed):
    mask = mask_from_row_scores(lambda rows: wanda_scores(problem, rows),
                                problem.d_out, problem.d_in, problem.pattern, device=problem.weight.device)
    return make_result(problem, mask, "wanda")
