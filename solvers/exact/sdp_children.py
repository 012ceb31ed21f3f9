"""Certified bounds of a node's children from the parent's multipliers (variable fixing, branching).

At a node, :func:`solvers.exact.sdp_bound.sdp_bound` returns multipliers ``u``
with ``B(u) = Nᵀ (q − diag u) N ≻ 0`` and the minimiser ``z̄`` of the convex
``f_u(z) = zᵀ (q − diag u) z + (u + 2c)ᵀ z`` on the affine set ``{Σ_g z = k_g}``,
where ``f_u(z̄) = h``. Fixing one more column, ``z_j = v`` (``v`` ∈ {0, 1}), cuts the
affine set by one hyperplane; ``f_u`` is still convex there, and its minimum is

    h_j(v) = h + (v − z̄_j)² / K_jj,      K = N B(u)⁻¹ Nᵀ,

reached at ``z̄ + (v − z̄_j) / K_jj · K e_j`` (the minimum of ``(y−ȳ)ᵀB(y−ȳ)`` on the
hyperplane ``a_jᵀ(y−ȳ) = v − z̄_j``, ``a_j = Nᵀe_j``). Since ``f_u`` equals the row's
objective on binary points, ``h_j(v)`` bounds the child from below without solving it.

Two uses: a child whose bound reaches the pruning target need not be opened, so its
column is fixed to the other value in every descendant (*reduced-cost fixing*, as in
branch-and-bound on the quadratic convex reformulation); and the column whose weaker
child bound is largest is a good one to branch on.

The closed form only screens. A bound that closes a child is certified like the
node's own bound (:meth:`solvers.exact.sdp_bound._Barrier.certified`): the
Frank–Wolfe minorant ``f_u(z') + min_w ∇f_u(z')ᵀ(w − z')`` at the child's computed
minimiser ``z'`` over the child's box and group sums, minus the same rounding margin.
At the exact minimiser the linear term vanishes, so the certified value is ``h_j(v)``
up to rounding. Units: those of ``q``. Float64 torch on the device of ``q``.
"""

from __future__ import annotations

import torch

from solvers.exact.sdp_bound import EPS, GroupBasis


def child_gains(basis: GroupBasis, z: torch.Tensor, chol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, gain)``: ``K = N B⁻¹ Nᵀ`` [m, m] and ``gain[v, j] = (v − z̄_j)² / K_jj`` [2, m].

    ``chol`` is the Cholesky factor of ``B(u)``; ``z`` the minimiser ``z̄`` it gave.
    """
    kmat = basis.sandwich(torch.cholesky_inverse(chol))
    kdiag = torch.diagonal(kmat).clamp_min(torch.finfo(torch.float64).tiny)
    gain = torch.stack([z * z, (1.0 - z) * (1.0 - z)]) / kdiag
    return kmat, gain


def pair_gains(kmat: torch.Tensor, z: torch.Tensor, column: int, value: int) -> torch.Tensor:
    """``gain[w, i]`` [2, m] of fixing ``z_i = w`` in the child ``z_column = value``, both from the parent.

    The minimum of ``(y−ȳ)ᵀB(y−ȳ)`` with two coordinates fixed is ``δᵀ K_P⁻¹ δ`` with
    ``δ = (value − z̄_j, w − z̄_i)`` and ``K_P`` the 2×2 block of ``K`` on ``(j, i)``; it
    includes the child's own gain. Entries with ``i = j`` (or a singular block) are 0.
    """
    kjj, kii, kij = kmat[column, column], torch.diagonal(kmat), kmat[column]
    det = kjj * kii - kij * kij
    dj = value - z[column]
    out = []
    for w in (0.0, 1.0):
        di = w - z
        out.append((dj * dj * kii - 2 * dj * di * kij + di * di * kjj) / det)
    gain = torch.stack(out)
    gain[:, column] = 0.0
    return torch.where(det.unsqueeze(0) > 1e-12 * kjj * kii, gain, torch.zeros_like(gain))


def certified_children(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int],
                       u: torch.Tensor, z: torch.Tensor, chol: torch.Tensor, kmat: torch.Tensor,
                       columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Certified lower bounds of the children ``z_columns[i] = values[i]``, as [n] float64.

    ``columns`` and ``values`` are [n] (one fixed column per child) or [n, r] (r distinct
    columns per child). Each bound is the Frank–Wolfe minorant of ``f_u`` at the child's
    minimiser ``z̄ + K_{:,J} K_JJ⁻¹ (v − z̄_J)`` (module docstring), over the child's
    polytope: ``w_J = v``, ``w ∈ [0,1]^m``, ``Σ_g w = k_g``.
    """
    if columns.dim() == 1:
        columns, values = columns.unsqueeze(1), values.unsqueeze(1)
    n = columns.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.float64, device=q.device)
    vals = values.to(torch.float64)
    block = kmat[columns.unsqueeze(2), columns.unsqueeze(1)]                      # [n, r, r]
    step = torch.linalg.solve(block, (vals - z[columns]).unsqueeze(2)).squeeze(2)  # [n, r]
    points = z.unsqueeze(1) + torch.einsum("mnr,nr->mn", kmat[:, columns], step)  # [m, n] child minimisers
    cols = torch.arange(n, device=q.device).unsqueeze(1).expand_as(columns)
    points[columns, cols] = vals
    lin = (u + 2 * c).unsqueeze(1)
    az = q @ points - u.unsqueeze(1) * points
    grad = 2 * az + lin
    value = (points * az).sum(0) + (lin * points).sum(0)
    linear = _child_linear_min(grad, groups, counts, columns, vals) - (grad * points).sum(0)
    norm_b = (chol * chol).sum().item()
    m = q.shape[0]
    return value + linear - m * m * EPS * 8 * (norm_b + 1.0)


def _child_linear_min(grad: torch.Tensor, groups: list[torch.Tensor], counts: list[int],
                      columns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``min gradᵀ w`` over each child's polytope, one child per column of ``grad`` [m, n].

    Per group the ``k`` smallest entries; the fixed columns are left out, each fixed to 1 is
    counted once, and its group takes one entry fewer.
    """
    n = grad.shape[1]
    cols = torch.arange(n, device=grad.device).unsqueeze(1).expand_as(columns)
    total = (values * grad[columns, cols]).sum(1)
    masked = grad.clone()
    masked[columns, cols] = torch.inf
    ones = values > 0.5
    for g, k in zip(groups, counts):
        inside = (columns.unsqueeze(2) == g.view(1, 1, -1)).any(2)             # [n, r] fixed column in g
        take = k - (inside & ones).sum(1)
        ordered = torch.sort(masked[g], dim=0).values
        sums = torch.cat([torch.zeros(1, n, dtype=grad.dtype, device=grad.device),
                          torch.cumsum(ordered, 0)])
        total = total + sums[take, cols[:, 0]]
    return total
