"""Doubly-nonnegative bound over *all* pairs by a splitting method, certified through the Lagrangian.

Problem (as :mod:`solvers.exact.sdp_bound`): ``min f(z) = zᵀ q z + 2 cᵀ z`` over ``z ∈ {0,1}^m`` with
``Σ_{j∈g} z_j = k_g`` for every group ``g``.

**Relaxation.** Lift ``w = (1, z, 1 − z) ∈ R^{2m+1}`` (``w = T y``, ``y = (1, z)``,
``T = [[1, 0], [0, I], [1, −I]]``). For binary feasible ``z`` the matrix ``Ŷ = w wᵀ`` is

* positive semidefinite with its range in ``T·range(V)``, where ``V`` spans ``{y : Σ_{j∈g} y_j = k_g y_0}``
  (the group sums *and* their products with every ``z_i``, ``Σ_{j∈g} Z_ij = k_g z_i``: facial reduction);
* entrywise nonnegative — the entries are ``z_i z_j``, ``z_i(1 − z_j)``, ``(1 − z_i)(1 − z_j)``: every RLT
  pair inequality (``Z ≥ 0``, ``Z_ij ≤ z_i``, ``Z_ij ≥ z_i + z_j − 1``) and the box, all at once;
* ``Ŷ_00 = 1`` and zero on the "gangster" entries ``z_i(1 − z_i)`` (which is ``diag Z = z``).

So ``min ⟨L, Ŷ⟩`` (``L`` = ``[[0, cᵀ], [c, q]]`` in the ``(1, z)`` block) over ``Ŷ = V̂ R V̂ᵀ, R ⪰ 0``
(``V̂`` an orthonormal basis of ``T·range V``) and ``Ŷ ∈ P = {Ŷ ≥ 0, Ŷ_00 = 1, gangster = 0}`` is the
doubly-nonnegative relaxation with every pair of :mod:`solvers.exact.dnn_bound`, and both projections are
cheap: onto ``P`` entrywise, onto ``{V̂ R V̂ᵀ : R ⪰ 0}`` one eigendecomposition of ``V̂ᵀ M V̂``
(``(m + 1 − #groups)``-square). This is the facially reduced splitting of Oliveira, Wolkowicz & Xu
(2018, "ADMM for the SDP relaxation of the QAP", Math. Prog. Comp. 10), their restricted
Peaceman–Rachford iteration (``γ`` the dual step factor, ``β`` the penalty)::

    R  ← P_PSD(V̂ᵀ (Ŷ + Λ/β) V̂),     X = V̂ R V̂ᵀ
    Λ  ← Λ + γβ (Ŷ − X)
    Ŷ  ← P_P(X − (L + Λ)/β)
    Λ  ← Λ + γβ (Ŷ − X)

``V̂ = T W`` with ``W = V S`` (``S`` from one QR), so ``V̂ᵀ M V̂ = Wᵀ (Tᵀ M T) W`` and
``V̂ R V̂ᵀ = T (W R Wᵀ) Tᵀ``: the ``(2m + 1)``-square matrices are only touched entrywise (``O(m²)``); the
products are ``(m + 1)``-square. ``β`` stays fixed (rebalancing it between the primal and dual residuals
cost 0.02–0.04 of the certified ratio; see Choices).

**Certificate.** No iterate is trusted. The dual matrix ``Θ = L + Λ`` holds the multipliers of
``P``: ``Θ ≥ 0`` off the gangster entries at a solution, and for *any* symmetric ``Θ̄`` that is ``≥ 0``
there (clipped), any sign on gangster entries, zero at ``(0, 0)``,

    f(z) ≥ f(z) − ⟨Θ̄, w wᵀ⟩      for every binary feasible z,

a quadratic in ``z``. Its off-diagonal entries are pair multipliers (``θ = 2 Θ̄_ab`` on the pair
inequality of the entry) passed through :func:`solvers.exact.dnn_bound.lagrangian`; the rest (box,
``Z_ii ≥ 0``, gangster) gives a diagonal ``dq``, a linear ``dc`` and a constant ``dk``, folded in exactly.
The Shor machinery of :mod:`solvers.exact.sdp_bound` then bounds the resulting quadratic from below at
``u = dq − δ`` (``δ`` the smallest shift that makes ``B(u) = Nᵀ(q' − diag u)N`` positive definite): the
Frank–Wolfe minorant over the box and group sums, with its rounding margin, taken at the better of two
points — the unconstrained minimiser on the affine set (as in :mod:`.sdp_bound`) and the minimiser over
the box found by accelerated projected gradient (:func:`box_minimiser`). The second matters: an ADMM dual
leaves ``B(u)`` nearly singular, the unconstrained minimiser runs far out of the box and its minorant
collapsed (−58 × 1-swap's loss on a full q_proj row where the box point certified 0.79). Adding the
constant and subtracting the rounding margins gives a bound valid for any ``Θ``, converged or not.

Why: the active-set barrier method of :mod:`.dnn_bound` holds at most ``O(m)`` pairs and pays an
``(m + p)``-square Newton system per step, so on full rows it closed only a few per cent of the
Shor-to-optimum gap; here every pair is in every iteration at the price of one eigendecomposition.

Choices (full 576-column q_proj rows 44 / 163 of SmolLM2 block 3, one thread; bound / 1-swap loss;
docs/results/2026-12-07-dnn-admm.md): a start from the Shor point (``Λ`` from its multipliers, ``Ŷ`` from
its barrier primal) instead of the centre — from the centre the dual was still negative after 300
iterations; float32 iterates from ``m = 128`` (57 ms instead of about 110 ms per iteration at ``m = 576``,
most of it the eigendecomposition; the certificate is float64); ``β₀ = 0.15 ‖L‖_F/(2m + 1)``: row 163
after 600 iterations 0.848 (0.4: 0.839, 0.8: 0.833; ``γ = 0.99`` instead of 0.9: 0.845). The dual
objective is not monotone: on row 163 the certificate rose to 0.856 at 800 iterations, then fell to 0.75
by 1 600 as the iterates oscillate (a tighter residual balance, ratio 2, made it worse, and so did a
window average of the dual); so every ``CERTIFY_EVERY`` iterations the dual is certified and the best
certificate kept. Those measurements rebalanced ``β`` every 20 iterations (×2 or ÷2 when one residual
exceeded 5× the other); a **fixed** ``β`` certified more at 1 000 iterations on every row tried: q_proj
rows 44 / 163 0.879 → 0.884 / 0.856 → 0.878, v_proj rows 43 / 44 0.842 → 0.851 / 0.856 → 0.863, gate_proj
rows 299 / 840 0.791 → 0.831 / 0.787 → 0.817, o_proj row 44 0.587 → 0.625 (β₀ factor 0.05 / 0.15 / 0.4
on row 163: 0.867 / 0.878 / 0.878). It still oscillates, on a longer period: row 163 peaked at 0.881–0.882
near 1 200 iterations (β₀ factor 0.15 and 0.4) and fell to 0.80 by 1 800, while ``Θ_00`` overshot to
0.98 of 1-swap's loss and the primal residual stalled near 0.1; hence the default of 1 200 iterations.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from solvers.exact.dnn_bound import PairSet, lagrangian
from solvers.exact.sdp_bound import EPS, Barrier, GroupBasis, NodeBound, sdp_bound, start_point

GAMMA = 0.9
"""Dual step factor of the restricted Peaceman–Rachford iteration (Oliveira, Wolkowicz & Xu use 0.9)."""
BETA_START = 0.15
"""``β₀ = BETA_START · ‖L‖_F / (2m + 1)``."""
DEFAULT_ITERATIONS, CERTIFY_EVERY = 1200, 200
"""Splitting iterations by default, and how often the dual is certified (the best certificate is kept)."""
FIRST_RESERVE = 0.15
"""Share of the time left at the start kept for the first certification (its cost is not known yet: about
10 s at ``m = 1 536``, where a 120 s row overran its deadline by up to 12 s without it)."""


@dataclass
class AdmmState:
    """Iterates of :func:`admm` (``2m + 1``-square ``Ŷ`` and ``Λ``, float64 or float32)."""

    y: torch.Tensor
    dual: torch.Tensor
    beta: float
    iterations: int
    primal_residual: float    # ‖Ŷ − X‖_F after the last iteration


@dataclass
class AdmmBound:
    """Outcome of :func:`dnn_admm_bound` (units of ``q``)."""

    bound: float              # certified lower bound (−inf when none could be certified)
    iterations: int           # splitting iterations
    certified_at: list        # (iteration, certified bound) of every certification
    u: torch.Tensor | None    # diagonal multipliers of the best certificate
    pairs: PairSet | None     # pair multipliers of the best certificate


class Lifting:
    """The maps of the module docstring for ``m`` columns: ``Tᵀ M T``, ``T Y Tᵀ`` and the basis ``W``."""

    def __init__(self, m: int, groups: list[torch.Tensor], counts: list[int], dtype=torch.float64):
        dev = groups[0].device
        self.m, self.groups = m, groups
        basis = GroupBasis(m, groups)
        z0 = start_point(m, groups, counts)
        v = torch.zeros(m + 1, basis.dim + 1, dtype=torch.float64, device=dev)
        v[0, 0] = 1.0
        v[1:, 0] = z0
        eye = torch.eye(basis.dim, dtype=torch.float64, device=dev)
        v[1:, 1:] = torch.stack([basis.lift(e) for e in eye], 1) if basis.dim else v[1:, 1:]
        _, r = torch.linalg.qr(self.lift_rows(v))
        self.w = torch.linalg.solve_triangular(r, v, upper=True, left=False).to(dtype)   # T W orthonormal
        gang = torch.zeros(2 * m + 1, 2 * m + 1, dtype=torch.bool, device=dev)
        idx = torch.arange(1, m + 1, device=dev)
        gang[idx, idx + m] = True
        gang[idx + m, idx] = True
        self.gangster = gang

    def lift_rows(self, v: torch.Tensor) -> torch.Tensor:
        """``T v`` for an ``(m + 1)``-row matrix."""
        return torch.cat([v[:1], v[1:], v[:1] - v[1:]])

    def lift(self, y: torch.Tensor) -> torch.Tensor:
        """``T Y Tᵀ`` of a symmetric ``Y``, written block by block."""
        m = self.m
        out = torch.empty(2 * m + 1, 2 * m + 1, dtype=y.dtype, device=y.device)
        out[:m + 1, :m + 1] = y
        torch.sub(y[:, :1], y[:, 1:], out=out[:m + 1, m + 1:])
        torch.sub(out[:1], out[1:m + 1], out=out[m + 1:])
        return out

    def pull(self, big: torch.Tensor) -> torch.Tensor:
        """``Tᵀ M T``."""
        m = self.m
        half = torch.cat([big[:, :1] + big[:, m + 1:].sum(1, keepdim=True), big[:, 1:m + 1] - big[:, m + 1:]], 1)
        return torch.cat([half[:1] + half[m + 1:].sum(0, keepdim=True), half[1:m + 1] - half[m + 1:]], 0)

    def project_polyhedron(self, big: torch.Tensor) -> torch.Tensor:
        """Projection onto ``P``: clip at 0, ``Ŷ_00 = 1``, gangster entries 0."""
        out = big.clamp(min=0.0)
        out.masked_fill_(self.gangster, 0.0)
        out[0, 0] = 1.0
        return out

    def project_cone(self, big: torch.Tensor) -> torch.Tensor:
        """``V̂ P_PSD(V̂ᵀ M V̂) V̂ᵀ`` of a symmetric ``(2m + 1)``-square ``M``."""
        small = self.w.mT @ self.pull(big) @ self.w
        lam, vec = torch.linalg.eigh(0.5 * (small + small.mT))
        keep = lam > 0
        half = (self.w @ vec[:, keep]) * lam[keep].sqrt()
        return self.lift(half @ half.mT)


def objective_matrix(q: torch.Tensor, c: torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    """``L``: ``[[0, cᵀ], [c, q]]`` in the ``(1, z)`` block of the ``2m + 1`` lifting, zero elsewhere."""
    m = q.shape[0]
    big = torch.zeros(2 * m + 1, 2 * m + 1, dtype=dtype, device=q.device)
    big[1:m + 1, 1:m + 1] = q
    big[0, 1:m + 1] = c
    big[1:m + 1, 0] = c
    return big


def admm(lifting: Lifting, cost: torch.Tensor, state: AdmmState | None, iterations: int,
         deadline: float | None = None) -> AdmmState:
    """``iterations`` steps of the restricted Peaceman–Rachford splitting (module docstring) from ``state``
    (None: ``Ŷ`` the lifted centre ``w₀w₀ᵀ``, ``Λ = 0``, ``β`` = ``‖L‖_F / (2m + 1)``)."""
    if state is None:
        m = lifting.m
        y0 = torch.zeros(m + 1, 1, dtype=cost.dtype, device=cost.device)
        y0[0, 0] = 1.0
        y0[1:, 0] = (lifting.w[1:, 0] / lifting.w[0, 0]).to(cost.dtype)
        state = AdmmState(lifting.lift(y0 @ y0.mT), torch.zeros_like(cost),
                          max(float(torch.linalg.norm(cost)) / (2 * m + 1), 1e-6), 0, math.inf)
    y, dual, beta, done = state.y, state.dual, state.beta, state.iterations
    primal = math.inf
    for _ in range(iterations):
        if deadline is not None and time.perf_counter() > deadline:
            break
        x = lifting.project_cone(y + dual / beta)
        dual = dual + (GAMMA * beta) * (y - x)
        y = lifting.project_polyhedron(x - (cost + dual) / beta)
        diff = y - x
        dual = dual + (GAMMA * beta) * diff
        primal = float(torch.linalg.norm(diff))
        done += 1
    return AdmmState(y, dual, beta, done, primal)


def lifted_multipliers(theta: torch.Tensor, m: int) -> tuple[PairSet, torch.Tensor, torch.Tensor, float]:
    """Split a ``(2m + 1)``-square multiplier matrix into ``(pairs, dq, dc, dk)`` with
    ``⟨Θ̄, w wᵀ⟩ = Σ θ_a s_a(z, zzᵀ) + zᵀ diag(dq) z + 2 dcᵀ z + dk`` (``Θ̄``: ``Θ`` symmetrised, clipped at 0
    off the gangster entries, zero at ``(0, 0)``; module docstring). Only pairs with ``θ > 0`` are listed."""
    sym = 0.5 * (theta + theta.mT)
    zs, ws = slice(1, m + 1), slice(m + 1, 2 * m + 1)
    gang = torch.diagonal(sym[zs, ws]).clone()
    th = sym.clamp(min=0.0)
    zz, zw, ww = th[zs, zs], th[zs, ws], th[ws, ws]
    dzz, dww = torch.diagonal(zz), torch.diagonal(ww)
    # z_i² (Θ_zz + Θ_ww − 2 Θ_g) + 2 z_i (Θ_0z − Θ_0w − Θ_ww + Θ_g) + (2 Θ_0w + Θ_ww), per i
    dq = dzz + dww - 2 * gang
    dc = th[0, zs] - th[0, ws] - dww + gang
    dk = float((2 * th[0, ws] + dww).sum())
    i, j = torch.triu_indices(m, m, 1, device=theta.device)
    kinds = [(zz[i, j], 0, i, j),          # zero:    θ Z_ij
             (zw[i, j], 1, i, j),          # z_i (1 − z_j): upper_i of (i, j)
             (zw[j, i], 2, i, j),          # z_j (1 − z_i): upper_j of (i, j)
             (ww[i, j], 3, i, j)]          # (1 − z_i)(1 − z_j): joint
    parts = []
    for value, kind, a, b in kinds:
        keep = value > 0
        parts.append((a[keep], b[keep], torch.full_like(a[keep], kind), 2 * value[keep].to(torch.float64)))
    pairs = PairSet(*(torch.cat([p[n] for p in parts]) for n in range(4)))
    return pairs, dq.to(torch.float64), dc.to(torch.float64), dk


def project_box_groups(x: torch.Tensor, owner: torch.Tensor, counts: torch.Tensor, sweeps: int = 60) -> torch.Tensor:
    """Euclidean projection onto ``{z ∈ [0,1]^m : Σ_{j∈g} z_j = k_g}``: ``clip(x − τ_g, 0, 1)`` with each
    group's shift ``τ_g`` found by bisection (``owner[j]`` = group of column ``j``)."""
    groups = len(counts)
    lo = torch.full((groups,), -1.0, dtype=x.dtype, device=x.device).scatter_reduce(0, owner, x - 1.0, "amin")
    hi = torch.full((groups,), 1.0, dtype=x.dtype, device=x.device).scatter_reduce(0, owner, x, "amax")
    for _ in range(sweeps):
        mid = 0.5 * (lo + hi)
        total = torch.zeros(groups, dtype=x.dtype, device=x.device).index_add_(0, owner, (x - mid[owner]).clamp(0.0, 1.0))
        high = total > counts
        lo = torch.where(high, mid, lo)
        hi = torch.where(high, hi, mid)
    return (x - (0.5 * (lo + hi))[owner]).clamp(0.0, 1.0)


def box_minimiser(quad: torch.Tensor, lin: torch.Tensor, owner: torch.Tensor, counts: torch.Tensor,
                  start: torch.Tensor, iterations: int) -> torch.Tensor:
    """Accelerated projected gradient (FISTA) on the convex ``zᵀ quad z + linᵀ z`` over the box and group
    sums, from ``start``: a point where the Frank–Wolfe certificate is tight even when the Hessian on the
    affine set is nearly singular (where the unconstrained minimiser of :mod:`.sdp_bound` runs far out
    of the box and its certificate collapses)."""
    step = 1.0 / (2.0 * float(torch.linalg.matrix_norm(quad, 2)) + 1e-30)
    z = project_box_groups(start, owner, counts)
    prev, ext, t = z, z, 1.0
    for _ in range(iterations):
        z = project_box_groups(ext - step * (2.0 * (quad @ ext) + lin), owner, counts)
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        ext = z + ((t - 1.0) / t_next) * (z - prev)
        prev, t = z, t_next
    return z


def certify(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int], theta: torch.Tensor,
            shor_steps: int, z_hint: torch.Tensor | None = None, box_steps: int = 200,
            deadline: float | None = None) -> tuple[float, torch.Tensor, PairSet]:
    """Certified bound of the Lagrangian of ``Θ`` (module docstring): ``(bound, u, pairs)``."""
    m = q.shape[0]
    pairs, dq, dc, dk = lifted_multipliers(theta, m)
    q2, c2, kappa, margin = lagrangian(q, c, pairs)
    c2 = c2 - dc - 0.5 * dq     # z_i² = z_i on binaries: the diagonal dq becomes the start of u
    kappa -= dk
    margin += 4 * (m + 2) * EPS * (float(dc.abs().sum() + dq.abs().sum()) + abs(dk) + abs(kappa))
    bar = Barrier(q2, c2, groups, counts)
    basis = bar.basis
    lam = float(torch.linalg.eigvalsh(basis.minus_diag(bar.b_q, dq))[0]) if basis.dim else 0.0
    scale = float(torch.diagonal(q2).abs().mean()) + 1e-12
    u = dq - (max(0.0, -lam) + 1e-6 * scale)
    best, best_u = -math.inf, u
    cur = bar.evaluate(u, 0.0)
    if cur is not None:
        owner = torch.empty(m, dtype=torch.long, device=q.device)
        for n, g in enumerate(groups):
            owner[g] = n
        count_t = torch.tensor([float(k) for k in counts], dtype=torch.float64, device=q.device)
        start = cur[2] if z_hint is None else z_hint.to(torch.float64)
        quad = q2 - torch.diag(u)
        z = box_minimiser(quad, u + 2 * c2, owner, count_t, start, box_steps)
        best = max(bar.certified(u, cur[2], cur[3]), bar.certified(u, z, cur[3]))
    if shor_steps > 0 and cur is not None:
        out = sdp_bound(q2, c2, groups, counts, u, 1e-6 * scale, max_iterations=shor_steps, deadline=deadline)
        if out.bound > best:
            best, best_u = out.bound, out.u
    return best + kappa - margin, best_u, pairs


def shor_start(lifting: Lifting, q: torch.Tensor, c: torch.Tensor, shor: NodeBound, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Ŷ, Λ)`` from a Shor ascent's point: ``Ŷ`` the lifted barrier primal ``Y = [[1, z̄ᵀ], [z̄, z̄z̄ᵀ + tK]]``
    (projected onto ``P``), ``Λ = Θ − L`` with ``Θ`` the Shor multipliers (gangster entries ``−u/2``, since
    ``f_u(z) = f(z) − Σ u_i (z_i² − z_i)``, and ``Θ_00 = h``): the splitting starts at Shor's value."""
    m = q.shape[0]
    basis = GroupBasis(m, lifting.groups)
    kmat = basis.sandwich(torch.cholesky_inverse(shor.chol))
    y = torch.empty(m + 1, m + 1, dtype=torch.float64, device=q.device)
    y[0, 0] = 1.0
    y[0, 1:] = shor.z
    y[1:, 0] = shor.z
    y[1:, 1:] = torch.addr(kmat, shor.z, shor.z, beta=shor.t)
    theta = torch.zeros(2 * m + 1, 2 * m + 1, dtype=dtype, device=q.device)
    idx = torch.arange(1, m + 1, device=q.device)
    theta[idx, idx + m] = (-0.5 * shor.u).to(dtype)
    theta[idx + m, idx] = (-0.5 * shor.u).to(dtype)
    theta[0, 0] = shor.h
    return lifting.project_polyhedron(lifting.lift(y.to(dtype))), theta - objective_matrix(q, c, dtype)


def dnn_admm_bound(q: torch.Tensor, c: torch.Tensor, groups: list[torch.Tensor], counts: list[int],
                   shor: NodeBound | None = None, iterations: int = DEFAULT_ITERATIONS,
                   certify_every: int = CERTIFY_EVERY, shor_steps: int = 0, deadline: float | None = None,
                   dtype=None) -> AdmmBound:
    """At most ``iterations`` splitting steps (:func:`admm`) from the Shor point ``shor`` (or from the centre),
    certified (:func:`certify`) every ``certify_every`` steps and at the end; returns the best certified
    bound. Stops early so that the last certification ends near ``deadline``. Iterates in ``dtype``
    (default float32 from ``m = 128`` on, float64 below: the certificate is float64 either way).
    Every group must have ``0 < k_g < |g|``."""
    m = q.shape[0]
    dtype = dtype or (torch.float32 if m >= 128 else torch.float64)
    lifting = Lifting(m, groups, counts, dtype)
    cost = objective_matrix(q, c, dtype)
    beta = BETA_START * max(float(torch.linalg.norm(cost)) / (2 * m + 1), 1e-12)
    if shor is not None:
        y, dual = shor_start(lifting, q, c, shor, dtype)
        state = AdmmState(y, dual, beta, 0, math.inf)
    else:
        state = admm(lifting, cost, None, 0)
        state.beta = beta
    best, history = (-math.inf, None, None), []
    # time kept for a certification: 1.5 × the last one's; before the first, FIRST_RESERVE of the time left
    reserve = 0.0 if deadline is None else FIRST_RESERVE * max(deadline - time.perf_counter(), 0.0)
    while state.iterations < iterations:
        if deadline is not None and time.perf_counter() + reserve > deadline and history:
            break
        stop = None if deadline is None else deadline - reserve
        state = admm(lifting, cost, state, min(certify_every, iterations - state.iterations), stop)
        t0 = time.perf_counter()
        bound, u, pairs = certify(q, c, groups, counts, (cost + state.dual).to(torch.float64), shor_steps,
                                  z_hint=state.y[0, 1:m + 1])
        reserve = 1.5 * (time.perf_counter() - t0)
        history.append((state.iterations, bound))
        if bound > best[0]:
            best = (bound, u, pairs)
    return AdmmBound(best[0], state.iterations, history, best[1], best[2])
