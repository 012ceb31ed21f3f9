"""SparseGPT-style mask selection (Frantar & Alistarh, 2023), row-balanced.

Following the original algorithm:

1. ``H = G + λI`` with ``λ = percdamp · mean(diag G)`` (``percdamp = 0.01``); dead inputs
   (``G_jj = 0``) get ``H_jj = 1`` and their weights are zeroed in the working copy.
2. ``U`` = upper Cholesky factor of ``H⁻¹``, so ``U_jj²`` is the OBS denominator
   ``[(H_{F_j})⁻¹]_jj`` of column ``j`` given the not-yet-processed columns ``F_j``.
3. Columns are processed in blocks of ``blocksize = 128`` (for N:M the largest multiple
   of ``m`` not above 128, so no group straddles a block). At the start of each block the
   OBS saliency ``ε_ij = w_ij² / U_jj²`` is computed on the *current, already updated*
   weights. Then column by column, each pruned weight's error
   ``δ = w_ij / U_jj`` is propagated to the later columns of the block
   (``W[:, j:] −= δ · U[j, j:]``) and, after the block, to all later columns
   (``W[:, i2:] −= Err · U[i1:i2, i2:]``).

**Row balance (the only departure from the original).** The original thresholds the
saliency jointly over all rows of a block, so rows end with different sparsities. Here
row ``i`` prunes exactly ``k_b = ⌊k·i2/d⌋ − ⌊k·i1/d⌋`` weights in block ``[i1, i2)``
(its proportional share of ``k``; the shares sum to exactly ``k``), the lowest
saliencies of that row in the block, stable ties. N:M is as in the original: at each
group start, per row, the ``m − n`` lowest saliencies of the group's ``m`` columns.

**What is reported.** The result is the *mask*: ``objective`` is the mask-only loss
``f(M)`` on the original ``W``. The loss after SparseGPT's own weight update,
``Σ_i (w_i − ŵ_i)ᵀ G (w_i − ŵ_i)`` with the updated pruned weights ``ŵ``, is reported
separately as ``extra["objective_with_weight_update"]``; the two are never mixed.
"""

from __future__ import annotations

import torch

from solvers.objective import residual_row_objectives
from solvers.pattern import NM, PerRow
from solvers.registration import register_solver
from solvers.result import make_result


def _lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Bool keep-mask pruning the ``count`` lowest entries per row (stable ties)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    if count > 0:
        order = torch.sort(scores, dim=1, stable=True).indices
        keep.scatter_(1, order[:, :count], False)
    return keep


def sparsegpt_mask(weight: torch.Tensor, gram: torch.Tensor, pattern, blocksize: int = 128,
                   percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(keep-mask, updated pruned weights ŵ)``, all arithmetic in float64."""
    w = weight.to(torch.float64).clone()
    h = gram.to(torch.float64).clone()
    d_out, d = w.shape
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += percdamp * torch.diagonal(h).mean() * torch.eye(d, dtype=torch.float64)
    hinv = torch.cholesky_inverse(torch.linalg.cholesky(h))
    u = torch.linalg.cholesky(hinv, upper=True)
    if isinstance(pattern, NM):
        blocksize = max(pattern.m, (blocksize // pattern.m) * pattern.m)
    keep = torch.ones(d_out, d, dtype=torch.bool)
    for i1 in range(0, d, blocksize):
        i2 = min(i1 + blocksize, d)
        w1 = w[:, i1:i2].clone()
        u1 = u[i1:i2, i1:i2]
        denom = torch.diagonal(u1) ** 2
        err1 = torch.zeros_like(w1)
        if isinstance(pattern, PerRow):
            k_block = (pattern.k * i2) // d - (pattern.k * i1) // d
            keep1 = _lowest(w1 ** 2 / denom[None, :], k_block)
        else:
            keep1 = torch.ones_like(w1, dtype=torch.bool)
        for j in range(i2 - i1):
            if isinstance(pattern, NM) and j % pattern.m == 0:
                cols = slice(j, j + pattern.m)
                keep1[:, cols] = _lowest(w1[:, cols] ** 2 / denom[None, cols], pattern.pruned_per_group)
            col = w1[:, j]
            q = torch.where(keep1[:, j], col, 0.0)
            err = (col - q) / u1[j, j]
            w1[:, j:] -= err[:, None] * u1[j, j:][None, :]
            w1[:, j] = q
            err1[:, j] = err
        w[:, i1:i2] = w1
        w[:, i2:] -= err1 @ u[i1:i2, i2:]
        keep[:, i1:i2] = keep1
    return keep, w


@register_solver("sparsegpt", "baseline",
                 "OBS saliency w²/[H⁻¹]_jj with sequential updates, blocks of 128, row-balanced")
def solve_sparsegpt(problem, warm_start, time_limit, seed, blocksize: int = 128, percdamp: float = 0.01):
    keep, updated = sparsegpt_mask(problem.weight, problem.gram, problem.pattern, blocksize, percdamp)
    residual = problem.weight.to(torch.float64) - updated
    with_update = float(residual_row_objectives(problem.gram, residual).sum())
    return make_result(problem, keep, "sparsegpt", settings={"blocksize": blocksize, "percdamp": percdamp},
                       extra={"objective_with_weight_update": with_update})
