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
separately as ``extra["objective_with_weight_update"]``; the two are never mixed. With
``update_weights=true`` the result also carries ``ŵ`` (:attr:`SolveResult.weights`), and a
whole-model run (``maskbench prune --solver sparsegpt --set update_weights=true``) writes ``ŵ``
into the model instead of only zeroing the pruned weights — SparseGPT as published (but
row-balanced, see above).

**Peak memory** (all float64): one ``d_in × d_in`` matrix on the CPU (``H``, overwritten in place by
``U``: :func:`inverse_cholesky_upper_`; three at once on CUDA while ``U`` is formed); the working
``W``/``ŵ`` (``8·d_out·d_in``) plus the mask; block buffers ``3 · 8·d_out·128`` and the lazy
update's temporary ``8·d_out·UPDATE_COLUMNS``: about ``8·d_in² + 9·d_out·d_in`` bytes beyond the
problem on the CPU, 1.4 GB at 4096 × 11008 (``24·d_in² + 9·d_out·d_in`` = 3.3 GB on CUDA).
"""

from __future__ import annotations

import numpy as np
import torch

from solvers.objective import problem_residual_objectives
from solvers.pattern import NM, PerRow
from solvers.registration import register_solver
from solvers.result import make_result

UPDATE_COLUMNS = 2048
"""Column chunk of the lazy update ``W[:, i2:] −= Err1 · U[i1:i2, i2:]`` (bounds its temporary)."""


def _lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Bool keep-mask pruning the ``count`` lowest entries per row (stable ties)."""
    keep = torch.ones_like(scores, dtype=torch.bool)
    if count > 0:
        order = torch.sort(scores, dim=1, stable=True).indices
        keep.scatter_(1, order[:, :count], False)
    return keep


def inverse_cholesky_upper_(h: torch.Tensor) -> torch.Tensor:
    """Overwrite the symmetric positive definite float64 ``h`` with ``U``, upper, ``UᵀU = h⁻¹``; return it.

    The released code's chain ``cholesky(cholesky_inverse(cholesky(H)), upper=True)``. On the CPU it
    runs in place through LAPACK (``dpotrf`` → ``dpotri`` → ``dpotrf``, SciPy's wrappers with
    ``overwrite_a``): one ``d × d`` matrix in all, instead of three while ``U`` is formed (torch's
    functions allocate their outputs; 2.9 GB against 0.97 GB at d = 11008). The row-major ``h``
    is handed to LAPACK as the column-major ``hᵀ`` (the same matrix, ``h`` being symmetric), so the
    lower factor LAPACK writes there is ``Uᵀ`` in column-major order, i.e. ``U`` in ``h``'s upper
    triangle. Elsewhere (CUDA) torch's chain, three matrices at the peak.
    """
    if h.device.type != "cpu":
        lower = torch.linalg.cholesky(h)
        inverse = torch.cholesky_inverse(lower)
        del lower
        return torch.linalg.cholesky(inverse, upper=True)
    from scipy.linalg import lapack

    column_major = h.numpy().T
    for step, routine in (("Cholesky of H", lapack.dpotrf), ("inverse of H", lapack.dpotri),
                          ("Cholesky of H⁻¹", lapack.dpotrf)):
        options = {"overwrite_c": 1} if routine is lapack.dpotri else {"overwrite_a": 1, "clean": 0}
        out, info = routine(column_major, lower=1, **options)
        if info != 0:
            raise ValueError(f"sparsegpt: the damped Hessian is not positive definite ({step}: LAPACK info {info}); "
                             "raise percdamp")
        if not np.shares_memory(out, column_major):  # a copy would leave h unchanged: never silently
            raise RuntimeError(f"sparsegpt: LAPACK did not work in place ({step})")
    return h.triu_()


def sparsegpt_mask(weight: torch.Tensor, gram: torch.Tensor, pattern, blocksize: int = 128,
                   percdamp: float = 0.01, joint_threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(keep-mask, updated pruned weights ŵ)``, all arithmetic in float64.

    ``joint_threshold`` (a sparsity in [0, 1)) replaces the row-balanced per-row selection by the
    released code's joint threshold over all rows of each block (``ε ≤`` the ``⌊numel·s⌋``-th
    smallest ``ε``): the published SparseGPT exactly, whose masks are not row-balanced and so do not
    satisfy a ``PerRow`` pattern (``tests/solvers/baselines/test_sparsegpt_released.py``).
    """
    w = weight.to(torch.float64).clone()
    h = gram.to(torch.float64).clone()
    d_out, d = w.shape
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    torch.diagonal(h).add_(percdamp * torch.diagonal(h).mean())
    u = inverse_cholesky_upper_(h)
    if isinstance(pattern, NM):
        blocksize = max(pattern.m, (blocksize // pattern.m) * pattern.m)
    keep = torch.ones(d_out, d, dtype=torch.bool)
    for i1 in range(0, d, blocksize):
        i2 = min(i1 + blocksize, d)
        w1 = w[:, i1:i2].clone()
        u1 = u[i1:i2, i1:i2]
        denom = torch.diagonal(u1) ** 2
        err1 = torch.zeros_like(w1)
        if joint_threshold is not None and not isinstance(pattern, NM):
            saliency = w1 ** 2 / denom[None, :]
            thresh = torch.sort(saliency.flatten())[0][int(saliency.numel() * joint_threshold)]
            keep1 = saliency > thresh
        elif isinstance(pattern, PerRow):
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
        for c0 in range(i2, d, UPDATE_COLUMNS):  # the lazy update, in column chunks (bounded temporary)
            w[:, c0:c0 + UPDATE_COLUMNS] -= err1 @ u[i1:i2, c0:c0 + UPDATE_COLUMNS]
        keep[:, i1:i2] = keep1
    return keep, w


@register_solver("sparsegpt", "baseline",
                 "OBS saliency w²/[H⁻¹]_jj with sequential updates, blocks of 128, row-balanced")
def solve_sparsegpt(problem, warm_start, time_limit, seed, blocksize: int = 128, percdamp: float = 0.01,
                    update_weights: bool = False):
    keep, updated = sparsegpt_mask(problem.weight, problem.gram, problem.pattern, blocksize, percdamp)
    residual = problem.weight.to(torch.float64) - updated
    with_update = float(problem_residual_objectives(problem, residual).sum())
    return make_result(problem, keep, "sparsegpt",
                       settings={"blocksize": blocksize, "percdamp": percdamp, "update_weights": update_weights},
                       extra={"objective_with_weight_update": with_update},
                       weights=updated if update_weights else None)
