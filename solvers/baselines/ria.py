"""RIA — Relative Importance and Activations (Zhang et al., ICLR 2024).

    RIA_ij = ( |W_ij| / Σ_k |W_kj|  +  |W_ij| / Σ_k |W_ik| ) · (sqrt(G_jj))^a,   a = 0.5

the weight's share of its input column plus its share of its output row, times
the input norm to the power ``a``. Selected per row (the original's
``--per_outneuron`` mode) or per N:M group; channel permutation is not applied.
A zero column or row sum (all-zero weights) contributes 0 instead of 0/0.
"""

from __future__ import annotations

import torch

from solvers.baselines.selection import input_norms, mask_from_scores
from solvers.registration import register_solver
from solvers.result import make_result


def ria_scores(problem, a: float = 0.5) -> torch.Tensor:
    w = problem.weight.to(torch.float64).abs()
    col = w.sum(dim=0, keepdim=True)
    row = w.sum(dim=1, keepdim=True)
    rel = torch.where(col > 0, w / col.clamp_min(1e-300), 0.0) + torch.where(row > 0, w / row.clamp_min(1e-300), 0.0)
    return rel * input_norms(problem.gram)[None, :].pow(a)


@register_solver("ria", "baseline", "relative importance (row + column share) × sqrt(G_jj)^0.5, per row")
def solve_ria(problem, warm_start, time_limit, seed, a: float = 0.5):
    mask = mask_from_scores(ria_scores(problem, a), problem.pattern)
    return make_result(problem, mask, "ria", settings={"a": a})
