"""Linearisations of one row's binary QP ``min zᵀ q z`` (shared by the HiGHS and CBC backends).

Both are exact for binary ``z`` (``z_j² = z_j``), differ in size and LP bound:

* ``mccormick`` — a product variable ``y_ij ≈ z_i z_j`` for every pair ``i < j``
  with ``q_ij ≠ 0``; objective ``Σ_j q_jj z_j + Σ_{i<j} 2 q_ij y_ij``. Because
  the problem is a minimisation only the binding McCormick side is needed:
  ``y_ij ≥ z_i + z_j − 1, y_ij ≥ 0`` when ``q_ij > 0`` and ``y_ij ≤ z_i,
  y_ij ≤ z_j`` when ``q_ij < 0``. ``O(d²)`` columns, tightest LP of the two on
  small rows.
* ``glover`` — Glover's compact form with cardinality-tightened bounds: one
  continuous ``w_j = z_j · s_j(z)``, ``s_j(z) = Σ_{i≠j} q_ij z_i``; objective
  ``Σ_j q_jj z_j + Σ_j w_j`` with ``w_j ≥ L_j z_j`` and
  ``w_j ≥ s_j(z) − U_j (1 − z_j)``, where ``L_j`` is the least ``s_j`` when ``z_j = 1``
  and ``U_j`` the largest when ``z_j = 0`` under the cardinality constraints
  (sums of the smallest / largest entries of row ``j`` of ``q``, group by group
  for N:M). ``2d`` columns, ``O(d²)`` nonzeros.

Plus the cardinality rows ``Σ_{j∈g} z_j = count_g``. Columns ``0..d−1`` are ``z``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.exact.rows import RowQP

FORMULATIONS = ("mccormick", "glover", "mccormick+oa", "glover+oa")
INF = float("inf")


@dataclass
class LinearModel:
    """``min cost·x`` s.t. ``row_lo ≤ A x ≤ row_hi``, ``col_lo ≤ x ≤ col_hi``; A row-wise (CSR)."""

    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray    # bool per column
    row_lo: np.ndarray
    row_hi: np.ndarray
    starts: np.ndarray     # CSR row starts (len rows + 1)
    index: np.ndarray
    value: np.ndarray
    d: int                 # the first d columns are z
    formulation: str = ""
    pairs: tuple[np.ndarray, np.ndarray] | None = None  # mccormick: (i, j) of each y column
    oa_vec: np.ndarray | None = None  # +oa: eigenvectors [d, r] of the t columns (appended last)

    @property
    def n_cols(self) -> int:
        return len(self.cost)

    @property
    def n_rows(self) -> int:
        return len(self.row_lo)

    def rows(self):
        """Iterate ``(lo, hi, columns, coefficients)`` per constraint."""
        for r in range(self.n_rows):
            a, b = self.starts[r], self.starts[r + 1]
            yield self.row_lo[r], self.row_hi[r], self.index[a:b], self.value[a:b]

    def start_vector(self, z: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Full column vector of a MIP start from a binary ``z``."""
        zf = np.asarray(z, dtype=np.float64)
        if self.pairs is not None:
            i, j = self.pairs
            x = np.concatenate([zf, zf[i] * zf[j]])
        else:
            x = np.concatenate([zf, zf * (q @ zf - np.diag(q) * zf)])
        if self.oa_vec is not None:
            x = np.concatenate([x, (self.oa_vec.T @ zf) ** 2])
        return np.clip(x, self.col_lo, self.col_hi)  # rounding must not leave the bounds


class _Rows:
    def __init__(self):
        self.lo, self.hi, self.idx, self.val, self.starts = [], [], [], [], [0]

    def add(self, lo: float, hi: float, idx, val) -> None:
        self.lo.append(lo)
        self.hi.append(hi)
        self.idx.extend(idx)
        self.val.extend(val)
        self.starts.append(len(self.idx))


def _cardinality(rows: _Rows, row: RowQP) -> None:
    for g, c in zip(row.groups, row.counts):
        rows.add(float(c), float(c), g.tolist(), [1.0] * len(g))


def _finish(rows: _Rows, cost, lo, hi, integer, d, formulation, pairs=None) -> LinearModel:
    return LinearModel(np.asarray(cost, float), np.asarray(lo, float), np.asarray(hi, float),
                       np.asarray(integer, bool), np.asarray(rows.lo, float), np.asarray(rows.hi, float),
                       np.asarray(rows.starts, np.int64), np.asarray(rows.idx, np.int32),
                       np.asarray(rows.val, float), d, formulation, pairs)


def mccormick(row: RowQP) -> LinearModel:
    q, d = row.q, row.d
    iu, ju = np.triu_indices(d, 1)
    keep = q[iu, ju] != 0.0
    iu, ju = iu[keep], ju[keep]
    rows = _Rows()
    _cardinality(rows, row)
    for t, (i, j) in enumerate(zip(iu.tolist(), ju.tolist())):
        y = d + t
        if q[i, j] > 0:
            rows.add(-INF, 1.0, [i, j, y], [1.0, 1.0, -1.0])
        else:
            rows.add(-INF, 0.0, [y, i], [1.0, -1.0])
            rows.add(-INF, 0.0, [y, j], [1.0, -1.0])
    n = len(iu)
    return _finish(rows, np.concatenate([np.diag(q), 2.0 * q[iu, ju]]), np.zeros(d + n),
                   np.ones(d + n), np.r_[np.ones(d, bool), np.zeros(n, bool)], d, "mccormick", (iu, ju))


def glover_bounds(row: RowQP) -> tuple[np.ndarray, np.ndarray]:
    """``L_j`` (min of ``s_j`` given ``z_j = 1``) and ``U_j`` (max given ``z_j = 0``)."""
    d, q = row.d, row.q
    lo, hi = np.zeros(d), np.zeros(d)
    groups, counts = row.groups, row.counts
    for j in range(d):
        for g, c in zip(groups, counts):
            vals = np.sort(q[j, g[g != j]])
            own = j in g
            lo[j] += vals[:max(c - 1, 0)].sum() if own else vals[:c].sum()
            hi[j] += vals[max(len(vals) - c, 0):].sum() if c > 0 else 0.0
    return lo, hi


def glover(row: RowQP) -> LinearModel:
    q, d = row.q, row.d
    low, up = glover_bounds(row)
    rows = _Rows()
    _cardinality(rows, row)
    for j in range(d):
        w = d + j
        nz = np.flatnonzero(q[j])
        others = nz[nz != j]
        rows.add(0.0, INF, [w, j], [1.0, -low[j]])                       # w_j ≥ L_j z_j
        rows.add(-up[j], INF, [w, j, *others.tolist()],                  # w_j ≥ s_j − U_j (1 − z_j)
                 [1.0, -up[j], *(-q[j, others]).tolist()])
    return _finish(rows, np.concatenate([np.diag(q), np.ones(d)]),
                   np.r_[np.zeros(d), np.minimum(low, 0.0)], np.r_[np.ones(d), np.full(d, INF)],
                   np.r_[np.ones(d, bool), np.zeros(d, bool)], d, "glover")


def build(row: RowQP, formulation: str, oa_points: int = 16) -> LinearModel:
    """``formulation`` ∈ FORMULATIONS, optionally suffixed ``+oa`` (:func:`add_outer_approximation`)."""
    base, _, oa = formulation.partition("+")
    if oa not in ("", "oa"):
        raise ValueError(f"unknown formulation suffix {oa!r} in {formulation!r}; only '+oa'")
    if base == "mccormick":
        model = mccormick(row)
    elif base == "glover":
        model = glover(row)
    else:
        raise ValueError(f"unknown formulation {formulation!r}; choose from {', '.join(FORMULATIONS)}")
    return add_outer_approximation(model, row, oa_points) if oa else model


def _extreme_sums(vec: np.ndarray, row: RowQP) -> tuple[float, float]:
    """Least and largest ``vecᵀz`` over feasible binary ``z`` (group by group)."""
    lo = hi = 0.0
    for g, c in zip(row.groups, row.counts):
        vals = np.sort(vec[g])
        lo += vals[:c].sum()
        hi += vals[len(vals) - c:].sum() if c else 0.0
    return float(lo), float(hi)


def diagonal_shift(q: np.ndarray) -> np.ndarray:
    """``δ_j = α q_jj`` with the largest α keeping ``q − diag(δ) ⪰ 0`` (α = λ_min of the correlation form).

    For binary z, ``zᵀqz = zᵀ(q − diag δ)z + δᵀz``; on fractional z the right side is larger
    (``z_j² ≤ z_j``), so the convex relaxation of the shifted form is tighter.
    """
    diag = np.clip(np.diag(q), 0.0, None)
    live = np.flatnonzero(diag > 0)      # dead columns (zero rows of q) take no shift
    if len(live) == 0:
        return np.zeros_like(diag)
    inv = 1.0 / np.sqrt(diag[live])
    alpha = float(np.linalg.eigvalsh(q[np.ix_(live, live)] * inv[:, None] * inv[None, :])[0])
    return max(0.0, alpha * (1.0 - 1e-6) - 1e-9) * diag


def add_outer_approximation(model: LinearModel, row: RowQP, points: int = 16, energy: float = 1.0 - 1e-9,
                            perturb: bool = True) -> LinearModel:
    """Append static tangent cuts of the convex objective to an exact linearisation.

    With ``q = Σ_i λ_i v_i v_iᵀ`` (eigenvalues ``λ_i ≥ 0``), ``zᵀqz = Σ_i λ_i u_i²``,
    ``u_i = v_iᵀz ∈ [lo_i, hi_i]``. New columns ``t_i ≥ 0`` with tangents
    ``t_i ≥ 2a u_i − a²`` at ``points`` equally spaced ``a ∈ [lo_i, hi_i]`` (plus
    the warm start's ``u_i``), and one row ``cost·x ≥ Σ_i λ_i t_i`` tying the
    exact linear objective to the outer approximation. Valid for every binary
    feasible ``z`` (take ``t_i = u_i²``); in every LP of the search tree it makes
    the bound at least the convex relaxation's up to the tangents' error
    ``(spacing)²/4 · λ_i``. Components beyond ``energy`` of the trace are dropped
    (dropping nonnegative terms keeps the cut valid).
    """
    shift = diagonal_shift(row.q) if perturb else np.zeros(row.d)
    lam, vec = np.linalg.eigh(row.q - np.diag(shift))
    order = np.argsort(lam)[::-1]
    lam, vec = np.clip(lam[order], 0.0, None), vec[:, order]
    total = lam.sum()
    if total <= 0:
        return model
    r = int(np.searchsorted(np.cumsum(lam) / total, energy) + 1)
    r = min(r, int((lam > 1e-12 * lam[0]).sum()))
    n0, d = model.n_cols, row.d
    rows = _Rows()
    rows.lo, rows.hi = model.row_lo.tolist(), model.row_hi.tolist()
    rows.idx, rows.val, rows.starts = model.index.tolist(), model.value.tolist(), model.starts.tolist()
    warm = None if row.warm is None else vec[:, :r].T @ row.warm.astype(float)
    zcols = np.arange(d)
    for i in range(r):
        lo, hi = _extreme_sums(vec[:, i], row)
        pts = np.linspace(lo, hi, points)
        if warm is not None:
            pts = np.append(pts, warm[i])
        for a in pts:
            rows.add(-a * a, INF, [n0 + i, *zcols.tolist()], [1.0, *(-2.0 * a * vec[:, i]).tolist()])
    nz = np.flatnonzero(model.cost)
    sh = np.flatnonzero(shift)     # cost·x ≥ Σ λ_i t_i + Σ_j shift_j z_j
    link = np.zeros(n0)
    link[nz] = model.cost[nz]
    link[sh] -= shift[sh]
    lz = np.flatnonzero(link)
    rows.add(0.0, INF, [*lz.tolist(), *range(n0, n0 + r)], [*link[lz].tolist(), *(-lam[:r]).tolist()])
    out = _finish(rows, np.r_[model.cost, np.zeros(r)], np.r_[model.col_lo, np.zeros(r)],
                  np.r_[model.col_hi, np.full(r, INF)], np.r_[model.integer, np.zeros(r, bool)], d,
                  model.formulation + "+oa", model.pairs)
    out.oa_vec = vec[:, :r]
    return out
