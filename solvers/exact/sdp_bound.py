"""Semidefinite (Shor) lower bound of a cardinality-constrained binary QP, by a barrier method.

Problem (one node of :mod:`solvers.exact.sdpbb`): ``min zᵀ q z + 2 cᵀ z`` over
``z ∈ {0,1}^m`` with ``Σ_{j∈g} z_j = k_g`` for every group ``g`` (a partition of
the columns). For binary ``z``, ``z_j² = z_j``, so for every ``u ∈ R^m``

    zᵀ q z + 2cᵀz = zᵀ (q − diag u) z + (u + 2c)ᵀ z =: f_u(z).

Let ``N`` be a basis of the directions that keep every group sum (the
elimination basis of :class:`GroupBasis`, one block per group) and
``B(u) = Nᵀ (q − diag u) N``. When
``B(u) ≻ 0``, ``f_u`` is convex on the affine set ``{Σ_g z = k_g}`` and its
minimum there,

    h(u) = min_{z : Σ_g z = k_g} f_u(z)      (closed form, one Cholesky of B),

is a lower bound of the binary problem. ``max_u h(u)`` s.t. ``B(u) ⪰ 0`` equals
the Shor SDP bound with ``diag Z = z`` and ``Z·1_g = k_g z`` (the dual of the
"quadratic convex reformulation" of Billionnet, Elloumi & Plateau, 2009). It is
computed by a log-barrier method: Newton ascent on

    φ_t(u) = h(u) + t · log det B(u),       t ← t / 2 after each centring,

with ``∇h = z − z²`` (``z`` the minimiser), ``∇² h = −½ D_s K D_s`` (``s = 1 − 2z``,
``K = N B⁻¹ Nᵀ``), ``∇ log det B = −diag K``, ``∇² log det B = −K ∘ K``. A centred
point at ``t`` is within ``t · dim B`` of the SDP value, which lets a caller stop
early: once ``h + 2 t dim B`` is below its target the node cannot be pruned.

The returned bound does not trust the closed form: it is the Frank–Wolfe
minorant ``f_u(z̄) + min_{v} ∇f_u(z̄)ᵀ(v − z̄)`` over the box and group sums at the
computed minimiser ``z̄`` (valid for any ``z̄`` in the affine set when ``f_u`` is
convex there), minus a rounding margin for the curvature that a successful
Cholesky can still hide (``m · ε · ‖B‖_F`` per unit squared distance, distance²
≤ m). Units: those of ``q`` (the exact solvers pass rows normalised to mean
diagonal 1). Everything runs in float64 torch on the device of ``q`` (the group index tensors must be there too).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

EPS = torch.finfo(torch.float64).eps
T_DECREASE = 0.5
"""Factor on ``t`` after each centring. A long step (1/10) re-centres with many Newton steps; halving took
30 % fewer steps in all on branch-and-bound trees of real d = 128 / 192 rows (0.3–0.5 level, 0.05 worse)."""
NEWTON_PER_T = 30
ARMIJO = 0.25
CENTRING = 1e-2
UNCENTRED_SLACK = 1.0
"""A node gives up after any Newton step whose ``h + UNCENTRED_SLACK · t · dim B`` is below its target.

A centred point at ``t`` lies within ``t · dim B`` of the SDP value, so at slack 1 a node stops without
centring once even a centred point's gap could not lift it to the target. This decides only when to
branch, never the bound, which stays certified. Branch-and-bound trees (1 thread) took 8 632 Newton steps
instead of 13 402 on six real d = 128 / synthetic d = 96 rows (and fewer nodes: 2 416 vs 2 584), 4 674
instead of 6 447 on three synthetic 2:4 rows; real d = 192 rows 13.6 / 9.0 s instead of 22.0 / 13.8 s.
Slack 1.5 took 10 190 steps; below 1 trees explode (the six rows were unfinished after 2 min at 0.7, 5 min at 0.5):
nodes that a centred point would prune are branched, and so are their children."""


@dataclass
class NodeBound:
    """Outcome of :func:`sdp_bound` (units of ``q``)."""

    bound: float          # valid lower bound of the binary problem (−inf when none could be certified)
    h: float              # closed-form h(u) at the best u (not safeguarded)
    u: torch.Tensor       # [m] the multipliers reached (B(u) ≻ 0)
    z: torch.Tensor       # [m] minimiser of f_u on the affine set (fractional; branching hint)
    t: float              # barrier weight where the method stopped (a child restarts from it)
    iterations: int       # Newton steps taken
    pruned: bool          # stopped because ``bound ≥ target``
    chol: torch.Tensor    # [dim, dim] Cholesky factor of B(u) at ``u`` (children's bounds, :mod:`.sdp_children`)


class GroupBasis:
    """Elimination basis ``N`` of the directions that keep every group sum.

    The last member ``ℓ(g)`` of each group is eliminated: ``z = z0 + N y`` with
    ``z_P = z0_P + y`` for the other members ``P`` and ``z_ℓ(g) = z0_ℓ(g) − Σ_{j∈P∩g} y_j``.
    ``N`` is never formed; ``Nᵀ diag(u) N = diag(u_P) + blockdiag_g(u_ℓ(g) 1 1ᵀ)`` costs O(m²).
    (A non-orthonormal basis only shifts ``log det B`` by a constant.)
    """

    def __init__(self, m: int, groups: list[torch.Tensor], slices: bool = True):
        """``slices=False`` keeps the index lists even for one ordered group (to compare the two paths)."""
        dev = groups[0].device
        owner = torch.empty(m, dtype=torch.long, device=dev)
        last = torch.stack([g[-1] for g in groups])
        for g in groups:
            owner[g] = g[-1]
        keep = torch.ones(m, dtype=torch.bool, device=dev)
        keep[last] = False
        self.m, self.free, self.device = m, torch.nonzero(keep).squeeze(1), dev
        self.partner = owner[self.free]                 # ℓ(g) of every kept coordinate
        self.dim = len(self.free)
        self.last = last
        self.member = (last.unsqueeze(1) == self.partner.unsqueeze(0)).to(torch.float64)  # [groups, dim]
        # One group listed in order (every per-row node): the kept coordinates are 0 … dim−1 and the
        # eliminated one is dim, so the methods below address them by slices instead of index lists,
        # with the same operations and values (the partner column broadcasts, and ``same`` is all ones).
        # At m = 128 on one thread the sandwich took 53 µs instead of 159 µs and project_diag 27 µs
        # instead of 41 µs (a tree of synthetic d = 128 rows: 10–18 % faster). ``sandwich`` and
        # ``minus_diag`` then go further for one group, with sums in another order (equal up to rounding).
        self.single = slices and len(groups) == 1 and bool(torch.equal(groups[0], torch.arange(m, device=dev)))
        if self.single:
            self.at_free, self.at_partner, self.at_last = slice(0, self.dim), slice(self.dim, m), slice(self.dim, m)
            self.same = torch.ones(1, 1, dtype=torch.float64, device=dev)
        else:
            self.at_free, self.at_partner, self.at_last = self.free, self.partner, last
            self.same = (self.partner.unsqueeze(1) == self.partner.unsqueeze(0)).to(torch.float64)

    def project(self, mat: torch.Tensor) -> torch.Tensor:
        """``Nᵀ mat N`` for a symmetric [m, m] matrix."""
        half = mat[:, self.at_free] - mat[:, self.at_partner]
        return half[self.at_free] - half[self.at_partner]

    def project_diag(self, u: torch.Tensor) -> torch.Tensor:
        """``Nᵀ diag(u) N``."""
        return torch.diag(u[self.at_free]) + self.same * u[self.at_partner].unsqueeze(1)

    def minus_diag(self, mat: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``mat − Nᵀ diag(u) N`` for a [dim, dim] matrix; for one ordered group in two passes over ``mat``
        instead of forming ``Nᵀ diag(u) N`` (at m = 256: 32 µs instead of 117 µs)."""
        if not self.single:
            return mat - self.project_diag(u)
        out = mat - u[self.dim]
        out.diagonal().sub_(u[:self.dim])
        return out

    def t_vec(self, v: torch.Tensor) -> torch.Tensor:
        """``Nᵀ v``."""
        return v[self.at_free] - v[self.at_partner]

    def lift(self, y: torch.Tensor) -> torch.Tensor:
        """``N y``."""
        out = torch.empty(self.m, dtype=torch.float64, device=self.device)
        out[self.at_free] = y
        out[self.at_last] = -(self.member @ y)
        return out

    def sandwich(self, inner: torch.Tensor) -> torch.Tensor:
        """``N inner Nᵀ`` for a [dim, dim] matrix (for one ordered group the eliminated row is ``−1ᵀ inner``,
        the column ``−inner 1`` and the corner ``1ᵀ inner 1``: at m = 256 about 90 µs instead of 177 µs)."""
        if self.single:
            out = torch.empty(self.m, self.m, dtype=torch.float64, device=self.device)
            out[:self.dim, :self.dim] = inner
            row_sums = inner.sum(1)
            out[self.dim, :self.dim] = -inner.sum(0)
            out[:self.dim, self.dim] = -row_sums
            out[self.dim, self.dim] = row_sums.sum()
            return out
        rows = torch.empty(self.m, self.dim, dtype=torch.float64, device=self.device)
        rows[self.at_free] = inner
        rows[self.at_last] = -(self.member @ inner)
        out = torch.empty(self.m, self.m, dtype=torch.float64, device=self.device)
        out[:, self.at_free] = rows
        out[:, self.at_last] = -(rows @ self.member.T)
        return out


def solve_with_factor(chol: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``(L Lᵀ)⁻¹ rhs`` for a lower Cholesky factor ``L`` and a vector, by two triangular solves
    (``torch.cholesky_solve`` gave the same digits here in about 1.6× the time for one vector at m = 210,
    one thread: 27 against 17 µs)."""
    half = torch.linalg.solve_triangular(chol, rhs.unsqueeze(1), upper=False)
    return torch.linalg.solve_triangular(chol.mT, half, upper=True).squeeze(1)


def rounding_margin(m: int, chol: torch.Tensor) -> float:
    """What a Frank–Wolfe bound of ``f_u`` gives up for the curvature a successful Cholesky ``L`` of
    ``B(u)`` can still hide: ``m · ε · ‖B‖_F`` per unit squared distance, distance² ≤ m, with a safety
    factor 8 (``‖L‖_F² ≥ ‖B‖_F``). Used by the node's bound and by its children's (:mod:`.sdp_children`)."""
    norm_b = (chol * chol).sum().item()
    return m * m * EPS * 8 * (norm_b + 1.0)


def start_point(m: int, groups: list[torch.Tensor], counts: list[int]) -> torch.Tensor:
    """``z0_j = k_g / |g|`` for ``j ∈ g``: a point of the affine set."""
    z0 = torch.zeros(m, dtype=torch.float64, device=groups[0].device)
    for g, c in zip(groups, counts):
        z0[g] = c / len(g)
    return z0


def initial_multipliers(q: torch.Tensor, basis: GroupBasis) -> torch.Tensor:
    """A constant ``u = −(1 + max(0, −λ_min(Nᵀ q N)))``: then ``B(u) ⪰ Nᵀ q N + |u| NᵀN ≻ 0`` (``NᵀN ⪰ I``)."""
    lam = torch.linalg.eigvalsh(basis.project(q))[0].item() if basis.dim else 0.0
    return torch.full((q.shape[0],), min(lam, 0.0) - 1.0, dtype=torch.float64, device=q.device)


def linear_min(grad: torch.Tensor, groups: list[torch.Tensor], counts: list[int]) -> float:
    """``min gradᵀ v`` over ``v ∈ [0,1]^m`` with ``Σ_g v = k_g``: the ``k_g`` smallest entries of each group."""
    total = 0.0
    for g, c in zip(groups, counts):
        if c:
            total += torch.topk(grad[g], c, largest=False).values.sum().item()
    return total


class Barrier:
    """Closed forms of h, its minimiser and the barrier for one node (see the module docstring)."""

    def __init__(self, q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int]):
        self.q, self.c, self.groups, self.counts = q, c, groups, counts
        self.basis = GroupBasis(q.shape[0], groups)
        self.z0 = start_point(q.shape[0], groups, counts)
        self.dim = self.basis.dim
        self.b_q = self.basis.project(q)
        self.q_z0 = q @ self.z0  # the node's constants, computed once instead of at every evaluation
        self.c2 = 2 * c

    def evaluate(self, u: torch.Tensor, t: float):
        """``(φ_t, h, z, chol, log det B)`` or None when ``B(u)`` is not positive definite."""
        b = self.basis.minus_diag(self.b_q, u)
        chol, info = torch.linalg.cholesky_ex(b)
        if info.item() != 0:
            return None
        az0 = self.q_z0 - u * self.z0
        g = self.basis.t_vec(az0 + 0.5 * u + self.c)
        y = -solve_with_factor(chol, g)
        z = self.z0 + self.basis.lift(y)
        h = (self.z0 @ az0 + (u + self.c2) @ self.z0 + g @ y).item()
        logdet = 2.0 * torch.log(torch.diagonal(chol)).sum().item()
        return h + t * logdet, h, z, chol, logdet

    def certified(self, u: torch.Tensor, z: torch.Tensor, chol: torch.Tensor) -> float:
        """Frank–Wolfe lower bound at ``z`` with the rounding margin (module docstring)."""
        lin = u + self.c2
        az = self.q @ z - u * z
        grad = 2 * az + lin
        value = (z @ az + lin @ z).item()
        bound = value + linear_min(grad, self.groups, self.counts) - (grad @ z).item()
        return bound - rounding_margin(self.q.shape[0], chol)


def newton_direction(basis: GroupBasis, cur: tuple, t: float):
    """Newton step of ``φ_t`` in ``u`` at an evaluated point ``cur`` (:meth:`Barrier.evaluate`):
    ``(step, decrement, K)`` with ``K = N B⁻¹ Nᵀ``, or None when the Hessian does not factor."""
    z, chol = cur[2], cur[3]
    kmat = basis.sandwich(torch.cholesky_inverse(chol))
    grad = z - z * z - t * torch.diagonal(kmat)
    s = 1.0 - 2.0 * z
    hess = torch.addr(kmat, s, s, beta=t, alpha=0.5).mul_(kmat)          # ½ D_s K D_s + t K∘K
    torch.diagonal(hess).add_(1e-12 * (torch.diagonal(hess).mean() + 1e-30))  # a tiny ridge
    hc, info = torch.linalg.cholesky_ex(hess)
    if info.item() != 0:
        return None
    step = solve_with_factor(hc, grad)
    return step, (grad @ step).item(), kmat


def sdp_bound(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int], u: torch.Tensor,
              t: float, target: float = math.inf, t_min: float = 1e-9, max_iterations: int = 400,
              deadline: float | None = None) -> NodeBound:
    """Maximise ``h(u)`` from a strictly feasible ``u`` at barrier weight ``t``; see the module docstring.

    Stops when the certified bound reaches ``target`` (``pruned``), when a centred
    point shows the SDP value is below ``target`` (``h + 2·t·dim B < target``) or
    any point after a Newton step has ``h + t·dim B < target`` (``UNCENTRED_SLACK``),
    when ``t·dim B < t_min·max(1, |h|)``, after ``max_iterations`` Newton steps, or
    once ``time.perf_counter()`` passes ``deadline``. The bound is certified in every case.
    Every group must have ``0 < k_g < |g|`` (the caller fixes the others).
    """
    bar = Barrier(q, c, groups, counts)
    cur = bar.evaluate(u, t)
    if cur is None:
        raise ValueError("sdp_bound needs a start with B(u) positive definite")
    its = 0
    best_h, best = cur[1], (u, cur[2], cur[3])  # multipliers, minimiser, Cholesky factor of the best h

    def result(pruned: bool, bound: float | None = None) -> NodeBound:
        bu, bz, bchol = best
        b = bar.certified(bu, bz, bchol) if bound is None else bound
        return NodeBound(b, best_h, bu, bz, t, its, pruned, bchol)

    if best_h >= target and (certified := bar.certified(*best)) >= target:
        return result(True, certified)
    while True:
        for _ in range(NEWTON_PER_T):
            if its >= max_iterations or (deadline is not None and time.perf_counter() > deadline):
                return result(False)
            phi = cur[0]
            direction = newton_direction(bar.basis, cur, t)
            if direction is None:
                break
            step, decrement, _ = direction
            its += 1
            alpha, new = 1.0, None
            while alpha > 1e-10:
                new = bar.evaluate(u + alpha * step, t)
                if new is not None and new[0] >= phi + ARMIJO * alpha * decrement:
                    break
                new, alpha = None, alpha * 0.5
            if new is None:
                break
            u, cur = u + alpha * step, new
            if cur[1] > best_h:
                best_h, best = cur[1], (u, cur[2], cur[3])
                if best_h >= target:
                    certified = bar.certified(*best)
                    if certified >= target:
                        return result(True, certified)
            if decrement < CENTRING * t * max(bar.dim, 1):
                break
            if math.isfinite(target) and cur[1] + UNCENTRED_SLACK * t * bar.dim < target:
                return result(False)
        if math.isfinite(target) and cur[1] + 2.0 * t * bar.dim < target:
            return result(False)
        if t * bar.dim < t_min * max(1.0, abs(cur[1])):
            return result(False)
        t *= T_DECREASE
        cur = (cur[1] + t * cur[4],) + cur[1:]  # the same u: only φ's barrier term changes
