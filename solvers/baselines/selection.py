"""Turn per-weight importance scores into a feasible keep-mask.

Per row (per-row pattern) or per group of ``m`` consecutive columns (N:M), the
weights with the *lowest* scores are pruned. Ties are broken deterministically by
column index (a stable sort: among equal scores the lower column is pruned first).
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
        order = torch.sort(scores, dim=1, stable=True).indices
        mask = torch.ones(d_out, d_in, dtype=torch.bool, device=scores.device)
        mask.scatter_(1, order[:, :pattern.k], False)
        return mask
    if isinstance(pattern, NM):
        groups = scores.reshape(d_out, d_in // pattern.m, pattern.m)
        order = torch.sort(groups, dim=2, stable=True).indices
        mask = torch.ones_like(groups, dtype=torch.bool)
        mask.scatter_(2, order[:, :, :pattern.pruned_per_group], False)
        return mask.reshape(d_out, d_in)
    raise TypeError(f"unsupported pattern {pattern!r}")


def input_norms(gram: torch.Tensor) -> torch.Tensor:
    """``‖X_j‖₂ = sqrt(G_jj)`` in float64 (negative rounding noise clamped to 0)."""
    return torch.diagonal(gram).to(torch.float64).clamp_min(0.0).sqrt()
