"""Turn per-weight importance scores into a feasible keep-mask.

Per row (per-row pattern) or per group of ``m`` consecutive columns (N:M), the
weights with the *lowest* scores are pruned. Ties are broken deterministically by
column index (a stable sort: among equal scores the lower column is pruned first).

Per row, no sort is needed: with ``v`` the ``k``-th smallest score of the row, the pruned
set is every score ``< v`` plus the lowest-column scores ``= v`` up to ``k`` in all — exactly
the first ``k`` of the stable ascending order: ``topk`` takes a quarter of a sort's time, the
whole selection 20 ms instead of 32 ms for a 576 × 1 536 layer on 2 CPU cores.
"""

from __future__ import annotations

import torch

from solvers.pattern import NM, Pattern, PerRow


def mask_from_scores(scores: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """Bool keep-mask ``[d_out, d_in]`` pruning the lowest scores under ``pattern``."""
    if not torch.isfinite(scores).all():
        raise ValueError("importance scores contain non-finite values")
    d_out, d_in = scores.shape
    scores = scores.to(torch.float64)
    if isinstance(pattern, PerRow):
        return _prune_lowest_per_row(scores, pattern.k)
    if isinstance(pattern, NM):
        groups = scores.reshape(d_out, d_in // pattern.m, pattern.m)
        order = torch.sort(groups, dim=2, stable=True).indices
        mask = torch.ones_like(groups, dtype=torch.bool)
        mask.scatter_(2, order[:, :, :pattern.pruned_per_group], False)
        return mask.reshape(d_out, d_in)
    raise TypeError(f"unsupported pattern {pattern!r}")


def _prune_lowest_per_row(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask pruning the first ``k`` entries of each row's stable ascending order."""
    d_out, d_in = scores.shape
    mask = torch.ones(d_out, d_in, dtype=torch.bool, device=scores.device)
    if k == 0:
        return mask
    kth = torch.topk(scores, k, dim=1, largest=False, sorted=False).values.amax(dim=1, keepdim=True)
    below = scores < kth
    tied = scores == kth
    room = k - below.sum(dim=1, keepdim=True)  # ≥ 1: the k-th value itself is tied
    pruned = below | (tied & (tied.cumsum(dim=1) <= room))
    return mask.masked_fill_(pruned, False)


def input_norms(gram: torch.Tensor) -> torch.Tensor:
    """``‖X_j‖₂ = sqrt(G_jj)`` in float64 (negative rounding noise clamped to 0)."""
    return torch.diagonal(gram).to(torch.float64).clamp_min(0.0).sqrt()
