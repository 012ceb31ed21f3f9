"""Certified bounds of a node's children from the node's own multipliers (for fixing columns).

At a node, :func:`solvers.exact.sdp_bound.sdp_bound` returns multipliers ``u``
with ``B(u) = Nᵀ (q − diag u) N ≻ 0`` and the minimiser ``z̄`` of the convex
``f_u(z) = zᵀ (q − diag u) z + (u + 2c)ᵀ z`` on the affine set ``{Σ_g z = k_g}``,
where ``f_u(z̄) = h``. Fixing one more column, ``z_j = v`` (``v`` ∈ {0, 1}), cuts the
affine set by one hyperplane; ``f_u`` is still convex there, and its minimum is

    h_j(v) = h + (v − z̄_j)² / K_jj,      K = N B(u)⁻¹ Nᵀ,

reached at ``z̄ + (v − z̄_j) / K_jj · K e_j`` (the minimum of ``(y−ȳ)ᵀB(y−ȳ)`` on the
hyperplane ``a_jᵀ(y−ȳ) = v − z̄_j``, ``a_j = Nᵀe_j``). Since ``f_u`` equals the row's
objective on binary points, ``h_j(v)`` bounds the child from below without solving it.
With several columns ``J`` fixed to ``v_J`` (``δ = v_J − z̄_J``) the minimum is
``h + δᵀ K_JJ⁻¹ δ`` at ``z̄ + K_{:,J} K_JJ⁻¹ δ``, and one more column's gain comes from
the Schur complement ``K − K_{:,J} K_JJ⁻¹ K_{J,:}`` (:func:`conditioned`). A child whose
bound reaches the pruning target need not be opened (:mod:`solvers.exact.sdpbb_fixing`).

The closed form only screens. A bound that closes a child is certified like the
node's own bound (:meth:`solvers.exact.sdp_bound.Barrier.certified`): the
Frank–Wolfe minorant ``f_u(z') + min_w ∇f_u(z')ᵀ(w − z')`` at the child's computed
minimiser ``z'`` over the child's box and group sums, minus the same rounding margin.
At the exact minimiser the linear term vanishes, so the certified value is the closed
form up to rounding. The minorant needs ``z'`` in the child's affine set, so
:func:`certified_points` sets the fixed entries and restores each group's sum first.
Units: those of ``q``. Float64 torch on the device of ``q``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.exact.sdp_bound import GroupBasis, rounding_margin


def child_gains(basis: GroupBasis, z: torch.Tensor, chol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, gain)``: ``K = N B⁻¹ Nᵀ`` [m, m] and ``gain[v, j] = (v − z̄_j)² / K_jj`` [2, m].

    ``chol`` is the Cholesky factor of ``B(u)``; ``z`` the minimiser ``z̄`` it gave.
    """
    kmat = basis.sandwich(torch.cholesky_inverse(chol))
    return kmat, gains(torch.diagonal(kmat), z)


def gains(k_diag: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``(v − z_j)² / K_jj`` as [2, m] (row v), for any minimiser ``z`` and the diagonal of its ``K``
    (e.g. of a Schur complement, :meth:`Conditioned.diagonal`)."""
    return torch.stack([z * z, (1.0 - z) * (1.0 - z)]) / k_diag.clamp_min(torch.finfo(torch.float64).tiny)


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
    step, info = torch.linalg.solve_ex(block, (vals - z[columns]).unsqueeze(2))
    step = torch.where((info == 0).unsqueeze(1), step.squeeze(2), torch.zeros_like(vals))  # [n, r]; 0: weaker, valid
    points = z.unsqueeze(1) + torch.einsum("mnr,nr->mn", kmat[:, columns], step)  # [m, n] child minimisers
    return certified_points(q, c, groups, counts, u, chol, points, columns, values)


@dataclass
class Conditioned:
    """A child ``z_J = v`` of a bounded node, from the node's ``K`` and minimiser ``z̄`` (:func:`conditioned`).

    Only the diagonal of the Schur complement ``K_J = K − K_{:,J} K_JJ⁻¹ K_{J,:}`` and a few of its
    columns are ever needed (the gains and the points of the child's own children), so ``K_J`` is
    kept as its two factors: at m = 210 that costs O(m·|J|) per diagonal instead of O(m²·|J|).
    """

    z: torch.Tensor          # [m] the child's minimiser z̄ + K_{:,J} K_JJ⁻¹ (v − z̄_J)
    lift: float              # δᵀ K_JJ⁻¹ δ: how far the child's bound lies above the node's
    kmat: torch.Tensor       # [m, m] the node's K
    k_cols: torch.Tensor     # [m, |J|] K_{:,J}
    solved: torch.Tensor     # [|J|, m] K_JJ⁻¹ K_{J,:}

    def diagonal(self) -> torch.Tensor:
        """``diag K_J`` [m]."""
        return torch.diagonal(self.kmat) - (self.k_cols * self.solved.T).sum(1)

    def columns(self, cols: torch.Tensor) -> torch.Tensor:
        """``K_J[:, cols]`` [m, len(cols)]."""
        return self.kmat[:, cols] - self.k_cols @ self.solved[:, cols]


def conditioned(kmat: torch.Tensor, z: torch.Tensor, columns: torch.Tensor, values: torch.Tensor) -> Conditioned | None:
    """The child ``z_J = v`` (``J = columns``): its minimiser ``z̄ + K_{:,J} K_JJ⁻¹ (v − z̄_J)``, the lift
    ``δᵀ K_JJ⁻¹ δ`` of its bound and its Schur complement ``K − K_{:,J} K_JJ⁻¹ K_{J,:}`` (as factors);
    None when ``K_JJ`` is numerically singular."""
    delta = values.to(torch.float64) - z[columns]
    kcj = kmat[:, columns]
    sol, info = torch.linalg.solve_ex(kmat[columns][:, columns], torch.cat([delta.unsqueeze(1), kcj.T], 1))
    if info.item() != 0 or not torch.isfinite(sol).all():
        return None
    return Conditioned(z + kcj @ sol[:, 0], float(delta @ sol[:, 0]), kmat, kcj, sol[:, 1:])


def certified_points(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int],
                     u: torch.Tensor, chol: torch.Tensor, points: torch.Tensor, columns: torch.Tensor,
                     values: torch.Tensor) -> torch.Tensor:
    """Frank–Wolfe bounds of ``f_u`` at ``points`` [m, n] over the children ``z_columns[i] = values[i]`` ([n, r]).

    The minorant needs each point in its child's affine set (then ``w − point`` is a direction
    on which ``f_u`` is convex): the fixed entries are set to their values and each group's
    sum is restored on its other members, so a point computed inaccurately (a nearly singular
    ``K_JJ``) gives a weaker bound, never an invalid one; a non-finite point gives −inf.
    """
    n = columns.shape[0]
    vals = values.to(torch.float64)
    points = points.clone()
    cols = torch.arange(n, device=q.device).unsqueeze(1).expand_as(columns)
    points[columns, cols] = vals
    movable = torch.ones_like(points, dtype=torch.bool)
    movable[columns, cols] = False
    for g, k in zip(groups, counts):
        free_in_g = movable[g].sum(0)                                         # [n]
        residual = (k - points[g].sum(0)) / free_in_g.clamp_min(1)
        points[g] += movable[g] * residual.unsqueeze(0)
    finite = torch.isfinite(points).all(0)
    points = torch.where(finite.unsqueeze(0), points, torch.zeros_like(points))
    lin = (u + 2 * c).unsqueeze(1)
    az = q @ points - u.unsqueeze(1) * points
    grad = 2 * az + lin
    value = (points * az).sum(0) + (lin * points).sum(0)
    linear = _child_linear_min(grad, groups, counts, columns, vals) - (grad * points).sum(0)
    bounds = value + linear - rounding_margin(q.shape[0], chol)
    return torch.where(finite, bounds, torch.full_like(bounds, -torch.inf))


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
    group_of = torch.empty(grad.shape[0], dtype=torch.long, device=grad.device)
    for index, g in enumerate(groups):
        group_of[g] = index
    fixed_group = group_of[columns]                                           # [n, r] group of each fixed column
    for index, (g, k) in enumerate(zip(groups, counts)):
        take = k - ((fixed_group == index) & ones).sum(1)
        ordered = torch.sort(masked[g], dim=0).values
        sums = torch.cat([torch.zeros(1, n, dtype=grad.dtype, device=grad.device),
                          torch.cumsum(ordered, 0)])
        total = total + sums[take, cols[:, 0]]
    return total
