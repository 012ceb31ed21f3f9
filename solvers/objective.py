"""The one objective of maskbench, in float64.

For a keep-mask ``M`` (bool ``[d_out, d_in]``, True = keep) the pruned residual of
row ``i`` is ``r_i = w_i ⊙ (1 − m_i)`` and

    f_i(M) = r_iᵀ G r_i,        f(M) = Σ_i f_i(M) = ‖XWᵀ − X(M⊙W)ᵀ‖²_F,

in units of (output activation)² summed over calibration tokens. Every solver's
mask is re-verified here: feasibility for the pattern, then ``f`` recomputed.

Two exact forms, the cheaper one chosen by shape (both float64, both chunked so the working set
stays ``8·row_chunk·d_in·2`` bytes plus one block of the second operand, whatever the layer):

* **Through the tokens** when the problem carries ``gram_factor`` ``X`` [T, d_in] (``G = XᵀX``,
  kept by :class:`~solvers.problem.GramAccumulator` while ``T ≤ d_in/2``):
  ``f_i = ‖X r_i‖²``, ``d_out·d_in·T`` multiply-adds.
* **Symmetric Gram form** otherwise: ``f_i = Σ_b r_ibᵀ (G_bb r_ib + 2 Σ_{c>b} G_bc r_ic)`` over
  column blocks, i.e. only the upper block triangle of ``G`` is multiplied: ``≈ d_out·d_in²/2``
  multiply-adds instead of the ``d_out·d_in²`` of ``(R G) ⊙ R``.

Both are the same real number as ``Σ_i r_iᵀ G r_i``; they differ from each other (and from the
plain product) only by float64 rounding, ~1e-15 relative (``bench/studies/verify_speed.py``
measures it at the 7B shapes together with the time).
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
    return problem_residual_objectives(problem, residual, row_chunk, col_chunk, device)


def problem_residual_objectives(problem: MaskProblem, residual: torch.Tensor, row_chunk: int = 1024,
                                col_chunk: int = 2048, device: torch.device | str | None = None) -> torch.Tensor:
    """``[r_iᵀ G r_i]`` for any residual ``W − Ŵ`` of ``problem``, through its tokens when it has them."""
    if problem.gram_factor is not None:
        return factor_row_objectives(problem.gram_factor, residual, row_chunk, device)
    return residual_row_objectives(problem.gram, residual, row_chunk, col_chunk, device)


def factor_row_objectives(factor: torch.Tensor, residual: torch.Tensor, row_chunk: int = 1024,
                          device: torch.device | str | None = None, token_chunk: int = 4096) -> torch.Tensor:
    """``[‖X r_i‖²]`` in float64 for ``G = XᵀX`` given as ``factor`` X [tokens, d_in].

    Memory beyond the inputs: ``8·(row_chunk·d_in + token_chunk·d_in + row_chunk·token_chunk)`` bytes.
    """
    dev = torch.device(device) if device is not None else residual.device
    d_out = residual.shape[0]
    out = torch.empty(d_out, dtype=torch.float64)
    blocks = [factor[t0:t0 + token_chunk].to(dev, torch.float64) for t0 in range(0, factor.shape[0], token_chunk)] \
        if factor.shape[0] <= token_chunk else None
    for r0 in range(0, d_out, row_chunk):
        r = residual[r0:r0 + row_chunk].to(dev, torch.float64)
        acc = torch.zeros(r.shape[0], dtype=torch.float64, device=dev)
        for t0 in range(0, factor.shape[0], token_chunk):
            x = blocks[t0 // token_chunk] if blocks is not None else factor[t0:t0 + token_chunk].to(dev, torch.float64)
            acc += (r @ x.T).square_().sum(dim=1)
        out[r0:r0 + row_chunk] = acc.cpu()
    return out


def residual_row_objectives(gram: torch.Tensor, residual: torch.Tensor, row_chunk: int = 1024,
                            col_chunk: int = 2048, device: torch.device | str | None = None) -> torch.Tensor:
    """``[r_iᵀ G r_i for each row i]`` in float64 for any residual ``W − Ŵ`` ``[d_out, d_in]``.

    Symmetric form (module docstring): for each column block ``b`` one product
    ``t = R_b G[b, b:]`` (``row_chunk × col_chunk × (d_in − b0)``), then
    ``f += Σ (t_b ⊙ R_b) + 2 Σ (t_{>b} ⊙ R_{>b})``. Memory beyond the inputs:
    ``8·(2·row_chunk·d_in + col_chunk·d_in)`` bytes (the float64 row chunk, ``t`` and one block of G).
    Used for masks (``Ŵ = M⊙W``) and for methods that also update kept weights.
    """
    dev = torch.device(device) if device is not None else residual.device
    d_out, d_in = residual.shape
    out = torch.empty(d_out, dtype=torch.float64)
    for r0 in range(0, d_out, row_chunk):
        r = residual[r0:r0 + row_chunk].to(dev, torch.float64)
        acc = torch.zeros(r.shape[0], dtype=torch.float64, device=dev)
        for c0 in range(0, d_in, col_chunk):
            c1 = min(c0 + col_chunk, d_in)
            g_block = gram[c0:c1, c0:].to(dev, torch.float64)  # rows of G: contiguous, upper part only
            t = r[:, c0:c1] @ g_block
            acc += (t[:, :c1 - c0] * r[:, c0:c1]).sum(dim=1)
            if c1 < d_in:
                acc += 2.0 * (t[:, c1 - c0:] * r[:, c1:]).sum(dim=1)
        out[r0:r0 + row_chunk] = acc.cpu()
    return out


def objective(problem: MaskProblem, mask, **kwargs) -> float:
    """Total loss ``f(M)`` in float64 (mask not checked against the pattern)."""
    return float(row_objectives(problem, mask, **kwargs).sum())


def evaluate(problem: MaskProblem, mask, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Check feasibility, then return ``(bool mask, float64 row objectives)``."""
    mask = check_feasible(problem, mask)
    return mask, row_objectives(problem, mask, **kwargs)
