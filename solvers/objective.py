"""The one objective of maskbench, in float64.

For a keep-mask ``M`` (bool ``[d_out, d_in]``, True = keep) the pruned residual of
row ``i`` is ``r_i = w_i ⊙ (1 − m_i)`` and

    f_i(M) = r_iᵀ G r_i,        f(M) = Σ_i f_i(M) = ‖XWᵀ − X(M⊙W)ᵀ‖²_F,

in units of (output activation)² summed over calibration tokens. Every solver's
mask is re-verified here: feasibility for the pattern, then ``f`` recomputed.

The computation is chunked: rows in blocks of ``row_chunk`` and ``G`` in column
blocks of ``col_chunk`` (converted to float64 one block at a time), so the
working set is ``8·(row_chunk·d_in + d_in·col_chunk)`` bytes beyond the inputs —
about 0.5 GB for a 4096×14336 layer with the defaults — whatever the layer size.
"""

from __future__ import annotations

import torch

from solvers.errors import InfeasibleMaskError
from solvers.problem import MaskProblem


def as_mask(mask, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """Convert a bool / 0-1 integer array or tensor into a bool CPU tensor (True = keep)."""
    import numpy as np

    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex():
            raise InfeasibleMaskError(f"mask must be bool or 0/1 integers, got dtype {mask.dtype}")
        if ((mask != 0) & (mask != 1)).any():
            raise InfeasibleMaskError("mask values must be 0 or 1 (1 = keep)")
        mask = mask != 0
    if shape is not None and tuple(mask.shape) != tuple(shape):
        raise InfeasibleMaskError(f"mask has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    return mask


def check_feasible(problem: MaskProblem, mask) -> torch.Tensor:
    """Return the bool mask if it satisfies the pattern exactly; raise otherwise."""
    mask = as_mask(mask, (problem.d_out, problem.d_in))
    ok = problem.pattern.is_feasible(mask.cpu())
    if not bool(ok.all()):
        bad = torch.nonzero(~ok).flatten()
        pruned = (~mask[bad[0]]).sum().item()
        raise InfeasibleMaskError(
            f"mask violates pattern {problem.pattern.describe()} in {len(bad)} of {problem.d_out} rows "
            f"(first: row {int(bad[0])}, which prunes {pruned} of {problem.d_in})")
    return mask


def row_objectives(problem: MaskProblem, mask, row_chunk: int = 1024, col_chunk: int = 2048,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Per-row losses ``f_i = r_iᵀ G r_i`` as a float64 tensor ``[d_out]``.

    The mask is not checked against the pattern here (see :func:`evaluate`).
    """
    mask = as_mask(mask, (problem.d_out, problem.d_in))
    residual = torch.where(mask.to(problem.weight.device), torch.zeros((), dtype=problem.weight.dtype),
                           problem.weight)
    return residual_row_objectives(problem.gram, residual, row_chunk, col_chunk, device)


def residual_row_objectives(gram: torch.Tensor, residual: torch.Tensor, row_chunk: int = 1024,
                            col_chunk: int = 2048, device: torch.device | str | None = None) -> torch.Tensor:
    """``[r_iᵀ G r_i for each row i]`` in float64 for any residual ``W − Ŵ`` ``[d_out, d_in]``.

    Used for masks (``Ŵ = M⊙W``) and for methods that also update kept weights
    (SparseGPT's reconstruction error, reported separately).
    """
    dev = torch.device(device) if device is not None else residual.device
    d_out, d_in = residual.shape
    out = torch.empty(d_out, dtype=torch.float64)
    for r0 in range(0, d_out, row_chunk):
        r = residual[r0:r0 + row_chunk].to(dev, torch.float64)
        acc = torch.zeros(r.shape[0], dtype=torch.float64, device=dev)
        for c0 in range(0, d_in, col_chunk):
            g_block = gram[:, c0:c0 + col_chunk].to(dev, torch.float64)
            acc += ((r @ g_block) * r[:, c0:c0 + col_chunk]).sum(dim=1)
        out[r0:r0 + row_chunk] = acc.cpu()
    return out


def objective(problem: MaskProblem, mask, **kwargs) -> float:
    """Total loss ``f(M)`` in float64 (mask not checked against the pattern)."""
    return float(row_objectives(problem, mask, **kwargs).sum())


def evaluate(problem: MaskProblem, mask, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Check feasibility, then return ``(bool mask, float64 row objectives)``."""
    mask = check_feasible(problem, mask)
    return mask, row_objectives(problem, mask, **kwargs)
