"""The rows of a mask problem as normalised binary QPs, and their reduction.

Rows of a mask problem are independent. For row ``i`` with weights ``w`` and
pruning indicator ``z ∈ {0,1}^d`` (1 = pruned) the loss is

    f_i(z) = zᵀ Q z,     Q = D_w G D_w   (D_w = diag(w)),   Q ⪰ 0,

subject to ``Σ_j z_j = k`` (per-row) or ``Σ_{j∈g} z_j = m − n`` for every group
``g`` of ``m`` consecutive columns (N:M). Each backend solves the *normalised*
row ``q = Q / s`` with ``s = mean(diag Q)`` (so ``mean(diag q) = 1``; solvers'
absolute tolerances then mean the same thing on every row) and results are
un-scaled by ``s``. Dead inputs (``G_jj = 0``) and zero weights give zero rows
and columns of ``q``: such ``z_j`` are free to prune at no cost.

Before a backend sees a row, :func:`reduce_row` fixes to *kept* every column
that provably cannot be pruned by any solution better than the start (its
Schur-complement bound exceeds twice the start's value) and renormalises the
rest; trivial rows (k = 0, k = d, all-zero q, zero-loss start) never reach a
backend. Without the fixing, outlier channels (q_jj 10⁴–10⁶ × the optimum)
made HiGHS return wrong "optimal" rows within its absolute tolerances.

The row pool that runs a backend over these rows is :mod:`solvers.exact.row_pool`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem


@dataclass
class RowQP:
    """One normalised row: min zᵀ q z s.t. ``Σ_{j∈groups[t]} z_j = counts[t]`` for every t."""

    row: int
    q: np.ndarray                  # [d, d] float64, mean diagonal 1 (or all zero)
    scale: float                   # Q = scale · q
    groups: list[np.ndarray]       # column index sets of the cardinality constraints (a partition)
    counts: list[int]              # pruned per set
    warm: np.ndarray | None = None  # bool [d], True = pruned

    @property
    def d(self) -> int:
        return self.q.shape[0]

    @property
    def k(self) -> int:
        return int(sum(self.counts))

    def value(self, z: np.ndarray) -> float:
        """``zᵀ q z`` in float64 for a 0/1 vector."""
        zf = np.asarray(z, dtype=np.float64)
        return float(zf @ self.q @ zf)

    def is_feasible(self, z: np.ndarray) -> bool:
        z = np.asarray(z, dtype=bool)
        return z.shape == (self.d,) and all(int(z[g].sum()) == c for g, c in zip(self.groups, self.counts))


@dataclass
class RowOutcome:
    """What a backend reports for one row (normalised scale)."""

    z: np.ndarray | None            # bool [d], True = pruned; None when the backend found nothing
    bound: float                     # dual bound (−inf / 0 when none)
    objective: float = math.nan      # backend's own objective of ``z``
    proved: bool = False             # backend proved optimality within gap_tol
    timed_out: bool = False
    nodes: int = 0
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    error: str = ""                  # non-empty: the backend failed on this row
    fixed: int = 0                   # columns fixed to "keep" by :func:`reduce_row`


class RowProblems:
    """The normalised per-row QPs of a problem, each built when asked for (:meth:`__getitem__`,
    iteration): a row's ``q`` is ``d_in × d_in`` float64, so holding every row's at once would be
    ``d_out·d_in²`` (4 TB at 4096 × 11008). Memory: one float64 copy of ``G`` and ``W`` plus the rows
    the caller keeps."""

    def __init__(self, problem: MaskProblem, warm_mask: torch.Tensor | None):
        self.gram = problem.gram.detach().to("cpu", torch.float64).numpy()
        self.weight = problem.weight.detach().to("cpu", torch.float64).numpy()
        pattern = problem.pattern
        if isinstance(pattern, NM):
            self.groups = [np.arange(s, s + pattern.m) for s in range(0, problem.d_in, pattern.m)]
            self.counts = [pattern.pruned_per_group] * len(self.groups)
        elif isinstance(pattern, PerRow):
            self.groups, self.counts = [np.arange(problem.d_in)], [pattern.k]
        else:
            raise TypeError(f"unsupported pattern {pattern!r}")
        self.warm = None if warm_mask is None else (~warm_mask.cpu()).numpy()

    def __len__(self) -> int:
        return self.weight.shape[0]

    def __getitem__(self, i: int) -> RowQP:
        if not -len(self) <= i < len(self):
            raise IndexError(f"row {i} out of range for {len(self)} rows")
        i %= len(self)
        w = self.weight[i]
        q = self.gram * w[:, None] * w[None, :]
        q = 0.5 * (q + q.T)
        s = float(np.mean(np.diag(q)))
        if s > 0 and math.isfinite(s):
            q = q / s
        else:
            s, q = 0.0, np.zeros_like(q)
        return RowQP(i, q, s, self.groups, self.counts, None if self.warm is None else self.warm[i].copy())

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def row_problems(problem: MaskProblem, warm_mask: torch.Tensor | None) -> RowProblems:
    """Normalised per-row QPs of ``problem`` (``warm_mask``: keep-mask or None), built lazily."""
    return RowProblems(problem, warm_mask)


def diagonal_start(row: RowQP) -> np.ndarray:
    """Wanda-like feasible z (prune the smallest ``q_jj`` of each set) when no warm start is given."""
    z = np.zeros(row.d, dtype=bool)
    diag = np.diag(row.q)
    for g, c in zip(row.groups, row.counts):
        z[g[np.argsort(diag[g], kind="stable")[:c]]] = True
    return z


def trivial_outcome(row: RowQP) -> RowOutcome | None:
    """Rows solved without a backend: every set all/none pruned, an all-zero q, or a zero-loss start."""
    if all(c in (0, len(g)) for g, c in zip(row.groups, row.counts)):
        z = np.zeros(row.d, dtype=bool)
        for g, c in zip(row.groups, row.counts):
            z[g] = c > 0
    elif row.scale == 0.0:
        z = row.warm if row.warm is not None else diagonal_start(row)
    elif row.warm is not None and row.value(row.warm) <= 0.0:
        z = row.warm
    else:
        return None
    v = row.value(z)
    return RowOutcome(z, v, v, proved=True)


def schur_bounds(q: np.ndarray, k: int, eps: float) -> np.ndarray:
    """Lower bounds ``β_j ≤ zᵀ q z`` for every ``z ∈ [0,1]^d`` with ``z_j = 1`` and ``Σz = k``.

    ``‖z‖² ≤ Σz = k`` on that set, so ``zᵀqz ≥ zᵀ(q + εI)z − εk ≥ 1/((q + εI)⁻¹)_jj − εk``
    (the middle minimum over all real ``z`` with ``z_j = 1`` is the Schur complement).
    """
    lam, vec = np.linalg.eigh(q)
    inv_diag = (vec ** 2) @ (1.0 / (np.clip(lam, 0.0, None) + eps))
    return 1.0 / inv_diag - eps * k


def reduce_row(row: RowQP) -> tuple[RowQP, np.ndarray, float]:
    """Fix to *kept* every column that no solution better than the start can prune.

    With ``f₀`` the start's value, a column with ``β_j > 2 f₀`` (:func:`schur_bounds`,
    factor 2 as a margin against rounding) and not pruned by the start is
    removed; the rest is renormalised by its mean diagonal ``s``. Returns the
    reduced row, the kept original column indices and ``s``. This removes the
    outlier channels whose huge ``q_jj`` would otherwise dwarf the optimum and
    drown it in the LP solvers' absolute tolerances.
    """
    start = row.warm if row.warm is not None else diagonal_start(row)
    f0, every = row.value(start), np.arange(row.d)
    if f0 <= 0.0 or row.d < 3:
        return row, every, 1.0
    eps = max(1e-6 * f0 / max(row.k, 1), 1e-12 * row.d)
    fixed = (schur_bounds(row.q, row.k, eps) > 2.0 * f0) & ~start
    if not fixed.any():
        return row, every, 1.0
    keep = np.flatnonzero(~fixed)
    pos = np.full(row.d, -1, dtype=np.int64)
    pos[keep] = np.arange(len(keep))
    groups, counts = [], []
    for g, c in zip(row.groups, row.counts):
        members = pos[g[~fixed[g]]]
        if len(members):
            groups.append(members)
            counts.append(c)
    q = row.q[np.ix_(keep, keep)]
    s = float(np.mean(np.diag(q)))
    s = s if s > 0.0 else 1.0
    return RowQP(row.row, q / s, row.scale * s, groups, counts, start[keep]), keep, s
