"""Least-squares refit of each row's kept weights for a given mask ("reconstruction").

For row ``i`` with kept set ``K`` (from the mask) and pruned set ``P``, the refit minimises the
damped layer loss over weights supported on ``K``:

    w'_K = argmin_v (w − v)ᵀ H (w − v)  over v with v_P = 0,   H = G + λI,
    λ = percdamp · mean(diag G)  (SparseGPT's damping, percdamp = 0.01; dead inputs G_jj = 0 get H_jj = 1),

whose solution is ``w'_K = w_K + H_KK⁻¹ H_KP w_P``. Since ``(w − v)ᵀ H (w − v) = f_G + λ‖w − v‖²``
and ``v = M⊙W`` is feasible, the refit's *undamped* loss never exceeds the mask-only loss
``f(M)`` (it drops by at least ``λ‖w'_K − w_K‖²``). Reported losses are always the undamped
float64 ``r_iᵀ G r_i`` of :mod:`solvers.objective` with ``r_i = w_i − w'_i``.

Two methods, chosen by cost (``method="auto"``):

* ``direct``: per row, Cholesky of ``H_KK`` and two triangular solves, rows in chunks whose
  ``[rows, |K|, |K|]`` float64 batch fits ``chunk_bytes`` (default 256 MiB). Exact up to float64
  rounding. Cost ``d_out·|K|³/3`` multiply-adds: 4096 rows × 5504³/3 ≈ 2.3·10¹⁴ at 4096 × 11008 —
  hours on 2 CPU cores, so ``auto`` uses it only when that is at most ``DIRECT_MAX_GEMMS`` times
  one ``d_out × d_in × d_in`` product (every SmolLM2-135M layer, ≤ 1536 wide).
* ``cg``: Jacobi-preconditioned conjugate gradients on all rows at once, started from ``w_K`` (so
  every iterate is no worse than the mask: CG decreases the damped quadratic monotonically). One
  iteration is one product ``(P ⊙ M) H`` (``d_out·d_in²`` multiply-adds, float64, rows and columns
  chunked as in :mod:`solvers.objective`); it stops when every row's preconditioned residual is
  below ``tol`` relative to its start, or after ``max_iters``. Peak memory: ``6 · 8 · d_out·d_in``
  bytes (the CG vectors) plus one float64 copy of ``H`` (``8·d_in²``).

Peak memory of ``direct``: ``8·d_in²`` (``H``) + ``chunk_bytes`` + ``3 · 8 · d_out·d_in``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.objective import as_mask, problem_residual_objectives
from solvers.problem import MaskProblem

DIRECT_MAX_GEMMS = 64.0
"""``auto`` uses ``direct`` while one row's ``|K|³/3`` is at most this many ``d_in²``, i.e. while the refit
costs at most this many ``d_out × d_in × d_in`` products (CG typically needs tens to hundreds)."""


@dataclass
class Refit:
    """Refit weights ``[d_out, d_in]`` float64 (zero where pruned) and their float64 losses."""

    weights: torch.Tensor
    row_objectives: torch.Tensor
    method: str
    iterations: int = 0
    relative_residual: float = 0.0
    percdamp: float = 0.01

    @property
    def objective(self) -> float:
        return float(self.row_objectives.sum())


def damped_gram(gram: torch.Tensor, percdamp: float, device: torch.device | None = None) -> torch.Tensor:
    """``H = G + λI`` in float64 with SparseGPT's damping and dead-input rule (module docstring)."""
    h = gram.to(device or gram.device, torch.float64, copy=True)
    diag = torch.diagonal(h)
    diag[diag == 0] = 1.0
    diag += percdamp * diag.mean()
    return h


def choose_method(d_in: int, kept: int) -> str:
    """``direct`` when ``|K|³/3 ≤ DIRECT_MAX_GEMMS · d_in²`` (per row), else ``cg``."""
    return "direct" if kept ** 3 / 3.0 <= DIRECT_MAX_GEMMS * d_in ** 2 else "cg"


def refit_direct(h: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor,
                 chunk_bytes: int = 256 << 20) -> torch.Tensor:
    """Exact ``w'_K = w_K + H_KK⁻¹ H_KP w_P`` row by row (rows with equal |K| batched)."""
    d_out, d_in = weight.shape
    out = torch.zeros(d_out, d_in, dtype=torch.float64, device=h.device)
    counts = keep.sum(1)
    for count in torch.unique(counts).tolist():
        if count == 0:
            continue
        rows = torch.nonzero(counts == count).flatten()
        step = max(1, chunk_bytes // (8 * count * count))
        for r0 in range(0, len(rows), step):
            idx_rows = rows[r0:r0 + step].to(h.device)
            m = keep[idx_rows]
            w = weight[idx_rows].to(torch.float64)
            kept = torch.nonzero(m)[:, 1].view(len(idx_rows), count)             # [r, |K|], ascending
            pruned_w = torch.where(m, torch.zeros((), dtype=w.dtype, device=w.device), w)
            rhs = (pruned_w @ h).gather(1, kept)                                  # (H_KP w_P) per row
            h_kk = h[kept[:, :, None], kept[:, None, :]]                          # [r, |K|, |K|]
            factor = torch.linalg.cholesky(h_kk)
            delta = torch.cholesky_solve(rhs[:, :, None], factor)[:, :, 0]
            out[idx_rows] = torch.zeros_like(w).scatter_(1, kept, w.gather(1, kept) + delta)
            del h_kk, factor
    return out


def _h_product(h: torch.Tensor, v: torch.Tensor, row_chunk: int = 1024) -> torch.Tensor:
    """``v H`` row-chunked (H symmetric)."""
    return torch.cat([v[r0:r0 + row_chunk] @ h for r0 in range(0, v.shape[0], row_chunk)])


def refit_cg(h: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor, tol: float = 1e-6,
             max_iters: int = 500) -> tuple[torch.Tensor, int, float]:
    """Jacobi-preconditioned CG for all rows at once; returns ``(weights, iterations, max rel. residual)``.

    Unknowns ``v_K`` per row; the system is ``H_KK v_K = H_K· w`` i.e. residual
    ``ρ = M ⊙ (H (w − v))`` (``v`` zero on ``P``). Start ``v = M⊙W``.
    """
    m = keep.to(h.device, torch.float64)
    w = weight.to(h.device, torch.float64)
    v = w * m
    inv_diag = 1.0 / torch.diagonal(h)
    rho = _h_product(h, w - v) * m
    z = rho * inv_diag
    p = z.clone()
    rz = (rho * z).sum(1)
    start = rz.clamp_min(1e-300)
    active = rz > 0
    iterations, rel = 0, 0.0
    for _ in range(max_iters):
        iterations += 1
        hp = _h_product(h, p) * m
        php = (p * hp).sum(1)
        alpha = torch.where(active & (php > 0), rz / php.clamp_min(1e-300), torch.zeros_like(rz))
        v += alpha[:, None] * p
        rho -= alpha[:, None] * hp
        z = rho * inv_diag
        rz_new = (rho * z).sum(1)
        rel = float((rz_new / start).clamp_min(0).sqrt().max())
        if rel <= tol:
            break
        beta = torch.where(rz > 0, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + beta[:, None] * p
        rz = rz_new
    return v * m, iterations, rel


def refit(problem: MaskProblem, mask, percdamp: float = 0.01, method: str = "auto", tol: float = 1e-6,
          max_iters: int = 500, device: torch.device | str | None = None) -> Refit:
    """Refit ``problem``'s kept weights for ``mask`` (module docstring); losses verified in float64."""
    keep = as_mask(mask, (problem.d_out, problem.d_in))
    dev = torch.device(device) if device is not None else problem.weight.device
    kept_max = int(keep.sum(1).max())
    if method == "auto":
        method = choose_method(problem.d_in, kept_max)
    if method not in ("direct", "cg"):
        raise ValueError(f"refit method must be auto, direct or cg, got {method!r}")
    h = damped_gram(problem.gram, percdamp, dev)
    keep_dev = keep.to(dev)
    iters, rel = 0, 0.0
    if method == "direct":
        weights = refit_direct(h, problem.weight.to(dev), keep_dev)
    else:
        weights, iters, rel = refit_cg(h, problem.weight.to(dev), keep_dev, tol, max_iters)
    del h
    weights = weights.cpu()
    rows = problem_residual_objectives(problem, problem.weight.to(torch.float64) - weights)
    return Refit(weights, rows, method, iters, rel, percdamp)


def weight_update(problem: MaskProblem, result, reconstruct: bool = False, **refit_options) -> tuple[
        torch.Tensor | None, float | None, str | None]:
    """The weights a whole-model run writes for ``result``: ``(weights, their loss, label)``.

    ``reconstruct``: the refit of the result's mask (label ``"refit"``), whatever the solver; else the
    solver's own update when it made one (``result.weights``, e.g. ``sparsegpt`` with
    ``update_weights=true``, label ``"sparsegpt"``); else ``(None, None, None)``: only the mask applies.
    """
    if reconstruct:
        fit = refit(problem, result.mask, **refit_options)
        result.extra["objective_reconstructed"] = fit.objective
        result.extra["reconstruction"] = {"method": fit.method, "iterations": fit.iterations,
                                          "relative_residual": fit.relative_residual, "percdamp": fit.percdamp}
        return fit.weights, fit.objective, "refit"
    if result.weights is not None:
        return result.weights, result.extra.get("objective_with_weight_update"), result.solver
    return None, None, None
