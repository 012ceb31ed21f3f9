"""Doubly-nonnegative (Shor + RLT pair inequalities) lower bound, in Lagrangian form.

Problem (as :mod:`solvers.exact.sdp_bound`): ``min f(z) = zᵀ q z + 2 cᵀ z`` over ``z ∈ {0,1}^m`` with
``Σ_{j∈g} z_j = k_g`` for every group ``g``. For binary ``z`` and every pair ``i < j`` the RLT
(McCormick) pair inequalities of the lifted ``Z_ij = z_i z_j`` hold:

    zero:    Z_ij ≥ 0            upper_i: z_i − Z_ij ≥ 0       upper_j: z_j − Z_ij ≥ 0
    joint:   1 − z_i − z_j + Z_ij ≥ 0,

each written ``s_a = α_a Z_ij + β_a z_i + γ_a z_j + δ_a ≥ 0``. With multipliers ``θ_a ≥ 0`` on any
set of them, for every feasible binary ``z``

    f(z) ≥ f(z) − Σ_a θ_a s_a(z, zzᵀ) = zᵀ q' z + 2 c'ᵀ z + κ,
    q' = q − Σ_a θ_a α_a (e_i e_jᵀ + e_j e_iᵀ)/2,   2c' = 2c − Σ_a θ_a (β_a e_i + γ_a e_j),   κ = −Σ_a θ_a δ_a.

The right side has the form of ``f``, so the Shor machinery of :mod:`.sdp_bound` bounds it from
below at any ``u`` with ``B(u) = Nᵀ(q' − diag u)N ≻ 0``: its Frank–Wolfe certificate (with its
rounding margin) plus ``κ``, minus a margin for the rounding in forming ``q'``, ``c'`` and ``κ``
(:func:`lagrangian`), is a **valid bound for any θ ≥ 0**, converged or not. θ = 0 is the Shor bound;
maximising over ``(u, θ)`` with every pair inequality is the dual of the doubly-nonnegative relaxation.

Method (an active-set barrier method): the pair multipliers live on an *active set* of at most
``max_pairs`` inequalities, and ``(u, θ)`` ascend jointly by Newton steps on

    φ_t(u, θ) = h(u, θ) + t log det B(u, θ) + t Σ_a log θ_a,    t ← t/2 after each centring.

Every variable ``v`` (a ``u_l`` or a ``θ_a``) changes ``q'`` by ``−α_v (e_i e_jᵀ + e_j e_iᵀ)/2`` (``u_l``:
``i = j = l``, ``α = 1``) and the linear coefficient of ``z``, so with ``z̄`` the minimiser,
``K = N B⁻¹ Nᵀ`` and ``Z = z̄z̄ᵀ + tK`` (the barrier's primal point):

    ∂φ/∂θ_a = −s_a(z̄, Z) + t/θ_a,    ∂φ/∂u_l = z̄_l − Z_ll,
    ∂²φ/∂v∂w = −½ g_vᵀ K g_w − t α_v α_w (K_{i_v i_w} K_{j_v j_w} + K_{i_v j_w} K_{j_v i_w})/2 − [v = w = θ_a] t/θ_a²,

with ``g_v = ∂_z ∂_v f`` (two entries: ``u_l``: ``(1 − 2z̄_l) e_l``; ``θ_a``: ``−(α z̄_j + β) e_i − (α z̄_i + γ) e_j``).
After each centring (Newton decrement below ``CENTRING · t · (m + p)``, or ``NEWTON_PER_T`` steps)
``t`` halves, members whose slack at ``Z`` exceeds ``LOOSE`` or whose θ is below ``DROP · t`` leave
the set, and the most violated inequalities at ``Z`` (``s_a < 0``) fill it up with ``θ = t``. A
Newton step costs the factorisation of the ``(m + p)``-square Hessian; ``O(m²)`` per centring finds
the violations.

Why these choices (one thread, details in docs/results/2026-12-07-dnn-bound.md): the centring
tolerance must be tight. At ``CENTRING = 10⁻²`` (the Shor barrier's) the ascent stalled *below* the
Shor value on a full 576-column q_proj row (0.798 of 1-swap's loss with 50 pairs, Shor 0.806) while
a convex combination towards the Shor point still climbed; at ``10⁻⁵`` it reached 0.809. A start from
scratch (constant ``u``, large ``t``) closes the whole Shor-to-optimum gap on small random rows
(m = 12, every pair active) but is slow on full rows (0.806 after 60 s); callers start from a Shor
ascent's point at ``10 ×`` its final ``t`` instead (0.819 after 60 s on the same row). A starting
point at a converged Shor solution (``t`` near 0) is a trap: the multipliers barely move.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from solvers.exact.sdp_bound import EPS, Barrier, solve_with_factor

NEWTON_PER_T = 50
CENTRING = 1e-5
ARMIJO = 0.25
T_DECREASE = 0.5
FRACTION_TO_BOUNDARY = 0.95
DROP = 1e-3
LOOSE = 0.02
KINDS = torch.tensor([[1.0, 0.0, 0.0, 0.0],     # zero:    Z_ij ≥ 0
                      [-1.0, 1.0, 0.0, 0.0],    # upper_i: Z_ij ≤ z_i
                      [-1.0, 0.0, 1.0, 0.0],    # upper_j: Z_ij ≤ z_j
                      [1.0, -1.0, -1.0, 1.0]],  # joint:   Z_ij ≥ z_i + z_j − 1
                     dtype=torch.float64)
"""Coefficients ``(α, β, γ, δ)`` of ``s = α Z_ij + β z_i + γ z_j + δ`` for the four kinds."""


@dataclass
class PairSet:
    """Active pair inequalities: columns ``i < j``, kind (row of :data:`KINDS`), multiplier θ > 0."""

    i: torch.Tensor       # [p] long
    j: torch.Tensor       # [p] long
    kind: torch.Tensor    # [p] long
    theta: torch.Tensor   # [p] float64

    @classmethod
    def empty(cls, device) -> PairSet:
        e = torch.zeros(0, dtype=torch.long, device=device)
        return cls(e, e.clone(), e.clone(), torch.zeros(0, dtype=torch.float64, device=device))

    def coefficients(self) -> torch.Tensor:
        """``[p, 4]`` ``(α, β, γ, δ)`` of every member."""
        return KINDS.to(self.theta.device)[self.kind]

    def with_theta(self, theta: torch.Tensor) -> PairSet:
        return PairSet(self.i, self.j, self.kind, theta)

    def __len__(self) -> int:
        return len(self.theta)


@dataclass
class DnnBound:
    """Outcome of :func:`dnn_bound` (units of ``q``)."""

    bound: float          # valid lower bound of the binary problem
    h: float              # closed-form Lagrangian value (h + κ) at the best point (not safeguarded)
    u: torch.Tensor       # [m] diagonal multipliers there
    pairs: PairSet        # pair multipliers there
    t: float              # barrier weight where the method stopped
    iterations: int       # Newton steps taken


def lagrangian(q: torch.Tensor, c: torch.Tensor, pairs: PairSet) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """``(q', c', κ, margin)`` of the module docstring. ``margin`` bounds the change of
    ``zᵀq'z + 2c'ᵀz + κ`` (any ``z ∈ [0,1]^m``) by float64 rounding in forming them: an entry of
    ``q'``/``c'`` sums at most ``p + 1`` terms, so its error is at most ``(p + 1) ε`` times their
    magnitudes; the margin doubles the total of all magnitudes times that."""
    coef = pairs.coefficients()
    th = pairs.theta
    q2 = q.clone()
    half = -0.5 * th * coef[:, 0]
    q2.index_put_((pairs.i, pairs.j), half, accumulate=True)
    q2.index_put_((pairs.j, pairs.i), half, accumulate=True)
    c2 = c.clone()
    c2.index_put_((pairs.i,), -0.5 * th * coef[:, 1], accumulate=True)
    c2.index_put_((pairs.j,), -0.5 * th * coef[:, 2], accumulate=True)
    kappa = -(th * coef[:, 3]).sum().item()
    magnitude = (q.abs().sum() + 2 * c.abs().sum() + (th * coef.abs().sum(1)).sum() * 2).item()
    margin = 4 * (len(th) + q.shape[0] + 2) * EPS * (magnitude + abs(kappa))
    return q2, c2, kappa, margin


class _Point:
    """``(u, pairs)`` with its barrier object and evaluation ``(h, z, chol, log det)`` (or ``cur`` None)."""

    def __init__(self, q, c, groups, counts, u, pairs: PairSet):
        self.q2, self.c2, self.kappa, self.margin = lagrangian(q, c, pairs)
        self.bar = Barrier(self.q2, self.c2, groups, counts)
        self.u, self.pairs = u, pairs
        self.cur = self.bar.evaluate(u, 0.0)

    def value(self) -> float:
        """``h + κ``: the Lagrangian bound's closed form (not safeguarded)."""
        return self.cur[1] + self.kappa

    def phi(self, t: float) -> float:
        return self.value() + t * (self.cur[4] + torch.log(self.pairs.theta).sum().item())

    def certified(self) -> float:
        return self.bar.certified(self.u, self.cur[2], self.cur[3]) + self.kappa - self.margin


def slacks(z: torch.Tensor, zmat: torch.Tensor, pairs: PairSet) -> torch.Tensor:
    """``s_a(z, Z)`` of every active inequality."""
    coef = pairs.coefficients()
    return coef[:, 0] * zmat[pairs.i, pairs.j] + coef[:, 1] * z[pairs.i] + coef[:, 2] * z[pairs.j] + coef[:, 3]


def _newton(point: _Point, t: float):
    """Joint Newton direction ``(du, dθ, decrement, Z)`` of ``φ_t`` (module docstring), or None."""
    z, chol = point.cur[2], point.cur[3]
    basis = point.bar.basis
    kmat = basis.sandwich(torch.cholesky_inverse(chol))
    zmat = torch.addr(kmat, z, z, beta=t)
    m, pairs = len(z), point.pairs
    coef = pairs.coefficients()
    cols = torch.arange(m, device=z.device)
    iv = torch.cat([cols, pairs.i])
    jv = torch.cat([cols, pairs.j])
    alpha = torch.cat([torch.ones(m, dtype=torch.float64, device=z.device), coef[:, 0]])
    ga = torch.cat([1.0 - 2.0 * z, -(coef[:, 0] * z[pairs.j] + coef[:, 1])])
    gb = torch.cat([torch.zeros(m, dtype=torch.float64, device=z.device), -(coef[:, 0] * z[pairs.i] + coef[:, 2])])
    k_ii, k_ij = kmat[iv][:, iv], kmat[iv][:, jv]
    k_ji, k_jj = kmat[jv][:, iv], kmat[jv][:, jv]
    hess = 0.5 * (torch.outer(ga, ga) * k_ii + torch.outer(ga, gb) * k_ij + torch.outer(gb, ga) * k_ji
                  + torch.outer(gb, gb) * k_jj)
    hess += (0.5 * t) * torch.outer(alpha, alpha) * (k_ii * k_jj + k_ij * k_ji)   # = −∂²φ (positive semidefinite)
    th = pairs.theta
    hess.diagonal()[m:] += t / th ** 2
    # a tiny ridge, relative per entry (a mean over the t/θ² entries would swamp the u block)
    hess.diagonal().mul_(1 + 1e-12).add_(1e-14 * (hess.diagonal()[:m].mean() + 1e-30))
    grad = torch.cat([z - torch.diagonal(zmat), -slacks(z, zmat, pairs) + t / th])
    hc, info = torch.linalg.cholesky_ex(hess)
    if info.item() != 0:
        return None
    step = solve_with_factor(hc, grad)
    return step[:m], step[m:], (grad @ step).item(), zmat


def _violated(z: torch.Tensor, zmat: torch.Tensor, pairs: PairSet, count: int) -> PairSet:
    """The ``count`` most violated pair inequalities at ``(z, Z)`` that are not active (θ = 0 for now)."""
    m = len(z)
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool, device=z.device), diagonal=1)
    zi, zj = z[:, None], z[None, :]
    slack = torch.stack([zmat, zi - zmat, zj - zmat, 1.0 - zi - zj + zmat])      # [4, m, m]
    slack = torch.where(upper, slack, torch.full_like(slack, float("inf")))
    if len(pairs):
        slack[pairs.kind, pairs.i, pairs.j] = float("inf")
    flat = slack.reshape(-1)
    count = min(count, int((flat < 0).sum().item()))
    if count <= 0:
        return PairSet.empty(z.device)
    idx = torch.topk(flat, count, largest=False).indices
    kind, rest = idx // (m * m), idx % (m * m)
    return PairSet(rest // m, rest % m, kind, torch.zeros(count, dtype=torch.float64, device=z.device))


def _join(a: PairSet, b: PairSet, theta_b: float) -> PairSet:
    return PairSet(torch.cat([a.i, b.i]), torch.cat([a.j, b.j]), torch.cat([a.kind, b.kind]),
                   torch.cat([a.theta, torch.full_like(b.theta, theta_b)]))


def _keep(pairs: PairSet, keep: torch.Tensor) -> PairSet:
    return PairSet(pairs.i[keep], pairs.j[keep], pairs.kind[keep], pairs.theta[keep])


def dnn_bound(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int], u: torch.Tensor,
              t: float, max_pairs: int | None = None, max_iterations: int = 200, deadline: float | None = None,
              t_min: float = 1e-9) -> DnnBound:
    """Ascend the doubly-nonnegative Lagrangian from a strictly feasible ``u`` (``B(u) ≻ 0`` for ``q``) at
    barrier weight ``t`` with at most ``max_pairs`` (default ``2m``) active pair inequalities; the returned
    bound is certified (module docstring). Stops after ``max_iterations`` Newton steps, past ``deadline``
    (``time.perf_counter()``) or when ``t·(dim + p) < t_min·max(1, |h|)``. Every group must have ``0 < k_g < |g|``."""
    m = q.shape[0]
    max_pairs = 2 * m if max_pairs is None else max_pairs
    point = _Point(q, c, groups, counts, u, PairSet.empty(q.device))
    if point.cur is None:
        raise ValueError("dnn_bound needs a start with B(u) positive definite")
    best, its = point, 0

    def out_of_time() -> bool:
        return its >= max_iterations or (deadline is not None and time.perf_counter() > deadline)

    while not out_of_time():
        for _ in range(NEWTON_PER_T):
            if out_of_time():
                break
            direction = _newton(point, t)
            if direction is None:
                break
            du, dth, decrement, _ = direction
            its += 1
            th = point.pairs.theta
            shrink = dth < 0
            lam = 1.0
            if shrink.any():
                lam = min(1.0, FRACTION_TO_BOUNDARY * (th[shrink] / -dth[shrink]).min().item())
            phi, new = point.phi(t), None
            while lam > 1e-10:
                new = _Point(q, c, groups, counts, point.u + lam * du, point.pairs.with_theta(th + lam * dth))
                if new.cur is not None and new.phi(t) >= phi + ARMIJO * lam * decrement:
                    break
                new, lam = None, lam * 0.5
            if new is None:
                break
            point = new
            if point.value() > best.value():
                best = point
            if decrement < CENTRING * t * (m + len(point.pairs)):
                break
        if t * (m + len(point.pairs)) < t_min * max(1.0, abs(point.value())):
            break
        t *= T_DECREASE
        direction = _newton(point, t)   # refresh Z for the active-set update at the new weight
        if direction is None:
            break
        zmat = direction[3]
        loose = slacks(point.cur[2], zmat, point.pairs) > LOOSE
        pairs = _keep(point.pairs, ~(loose | (point.pairs.theta < DROP * t)))
        room = max_pairs - len(pairs)
        if room > 0:
            pairs = _join(pairs, _violated(point.cur[2], zmat, pairs, room), t)
        if len(pairs) != len(point.pairs) or room > 0:
            moved = _Point(q, c, groups, counts, point.u, pairs)
            if moved.cur is not None:
                point = moved
    bound = max(best.certified(), point.certified())
    return DnnBound(bound, best.value(), best.u, best.pairs, t, its)
