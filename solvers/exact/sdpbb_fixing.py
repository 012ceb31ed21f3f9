"""Fixing columns of ``sdpbb`` nodes: by the group sums, and by children's bounds from a node's multipliers.

A node is a partial fixing of the row's columns (``FREE`` / ``KEEP`` / ``PRUNE``).
:func:`propagate` fixes what the group sums force. The rest is reduced-cost fixing
in SDP form: once a node is bounded, :mod:`solvers.exact.sdp_children` bounds any
of its children from the node's own multipliers, so

* :func:`fix_at_node` closes every one-column child whose certified bound reaches
  the pruning target; its column takes the other value in every descendant;
* :func:`fix_in_child` does the same inside one child of the branching column,
  conditioned on everything that child fixes (the branching column, what the
  group sums force, what earlier rounds fixed): the child's minimiser and the
  Schur complement of ``K`` give each further column's bound. Up to
  ``CHILD_ROUNDS`` rounds, stopping when a round fixes nothing.

Every part cut away has a certified bound at least the target; the smallest of
them is reported as a closed bound, so the tree's final bound stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from solvers.exact.sdp_bound import NodeBound
from solvers.exact.sdp_children import certified_children, certified_points, conditioned, gains

FREE, KEEP, PRUNE = -1, 0, 1
CHILD_ROUNDS = 8
"""Rounds of conditioned fixing in each child (:func:`fix_in_child`; see ``sdpbb``'s module docstring).

Fewer rounds leave more nodes and more rounds fewer, at about the same time: real d = 192 seeds 0–2 on
one thread took 15.9 / 15.8 / 16.0 s with 3 / 8 / 16 rounds (2 547 / 1 953 / 1 851 nodes)."""


def propagate(fix: np.ndarray, groups: list[np.ndarray], counts: list[int]) -> np.ndarray | None:
    """Fix what the group sums force; None when a group can no longer reach its count."""
    fix = fix.copy()
    for g, c in zip(groups, counts):
        f = fix[g]
        pruned, free = int((f == PRUNE).sum()), int((f == FREE).sum())
        if pruned > c or pruned + free < c:
            return None
        if free and pruned == c:
            fix[g[f == FREE]] = KEEP
        elif free and pruned + free == c:
            fix[g[f == FREE]] = PRUNE
    return fix


@dataclass
class BoundedNode:
    """What the children's bounds need of a bounded node (its free columns' problem, in their own indices)."""

    free: np.ndarray                 # the node's free columns (row indices)
    q: torch.Tensor                  # [m, m] q on the free columns
    lin: torch.Tensor                # [m] linear term from the pruned columns
    const: float                     # constant from the pruned columns
    groups: list[torch.Tensor]       # group members among the free columns (free-column indices)
    counts: list[int]                # how many each group still prunes
    res: NodeBound                   # the node's bound, multipliers, minimiser and Cholesky factor
    kmat: torch.Tensor               # [m, m] K = N B(u)⁻¹ Nᵀ at the node's multipliers
    target: float                    # pruning target (row units, with ``const``)

    def screen(self, closed_form: torch.Tensor) -> torch.Tensor:
        """Which closed-form bounds (free-column units) may reach the target; a little slack, certification decides."""
        local = self.target - self.const
        return closed_form >= local - 1e-9 * abs(local)


def exclude(fix: np.ndarray, columns: np.ndarray, values: np.ndarray, bounds: np.ndarray, target: float,
            groups: list[np.ndarray], counts: list[int]) -> tuple[np.ndarray | None, float | None]:
    """Cut away the parts ``z_columns[i] = values[i]`` whose certified ``bounds[i]`` reach ``target``.

    Each such column takes the other value (``z = 1`` means pruned), then the group sums
    propagate. Returns the new fixing (None when nothing is left: a column lost both
    values, or a group its count) and the smallest bound cut away (None when none was).
    """
    shut = bounds >= target
    if not shut.any():
        return fix, None
    closed = float(bounds[shut].min())
    fix = fix.copy()
    for column, value in zip(columns[shut], values[shut]):
        other = KEEP if value == 1 else PRUNE
        if fix[column] not in (FREE, other):
            return None, closed
        fix[column] = other
    return propagate(fix, groups, counts), closed


def fix_at_node(fix: np.ndarray, node: BoundedNode, gain: torch.Tensor, groups: list[np.ndarray],
                counts: list[int]) -> tuple[np.ndarray | None, float | None]:
    """Fix the node's columns with a closed one-column child; ``gain`` [2, m] from ``child_gains``."""
    hits = torch.nonzero(node.screen(node.res.bound + gain).T)                 # [n, 2]: column, value
    cols, vals = hits[:, 0], hits[:, 1]
    bounds = certified_children(node.q, node.lin, node.groups, node.counts, node.res.u, node.res.z,
                                node.res.chol, node.kmat, cols, vals)
    return exclude(fix, node.free[cols.numpy()], vals.numpy(), bounds.numpy() + node.const, node.target,
                   groups, counts)


def fix_in_child(child: np.ndarray, fix: np.ndarray, node: BoundedNode, groups: list[np.ndarray],
                 counts: list[int]) -> tuple[np.ndarray | None, float | None]:
    """Rounds of fixing inside ``child`` (a fixing below ``fix``, the node's before its own fixing) from the
    node's multipliers, conditioned on every column the child fixes that ``fix`` leaves free.

    Returns the child's fixing (None when its every part was closed) and the smallest
    certified bound cut away (None when nothing was).
    """
    closed = None
    for _ in range(CHILD_ROUNDS):
        before = int((child == FREE).sum())
        child, shut = _conditioned_round(child, fix, node, groups, counts)
        if shut is not None:
            closed = shut if closed is None else min(closed, shut)
        if child is None or int((child == FREE).sum()) == before:
            break
    return child, closed


def _conditioned_round(child: np.ndarray, fix: np.ndarray, node: BoundedNode, groups: list[np.ndarray],
                       counts: list[int]) -> tuple[np.ndarray | None, float | None]:
    """One round of :func:`fix_in_child`: condition on the child's fixed columns ``J``, bound each free column."""
    sub = child[node.free]
    if not (sub == FREE).any():
        return child, None
    fixed = torch.from_numpy(np.flatnonzero((sub != FREE) & (fix[node.free] == FREE)))
    for g in node.groups:                                  # a whole group fixed: its last member is implied
        if torch.isin(g, fixed).all():
            fixed = fixed[fixed != g[-1]]
    if not len(fixed):
        return child, None
    values = torch.from_numpy((sub[fixed.numpy()] == PRUNE).astype(np.int64))
    cond = conditioned(node.kmat, node.res.z, fixed, values)
    if cond is None:                                       # K_JJ numerically singular: fix nothing here
        return child, None
    z_j, lift, res = cond.z, cond.lift, node.res
    if node.screen(torch.tensor(res.bound + lift)):
        whole = certified_points(node.q, node.lin, node.groups, node.counts, res.u, res.chol, z_j.unsqueeze(1),
                                 fixed.unsqueeze(0), values.unsqueeze(0)).item() + node.const
        if whole >= node.target:
            return None, whole
    k_diag = cond.diagonal()
    hits = torch.nonzero((node.screen(res.bound + lift + gains(k_diag, z_j)) & torch.from_numpy(sub == FREE)).T)
    if not len(hits):
        return child, None
    cols, vals = hits[:, 0], hits[:, 1]
    step = (vals.to(torch.float64) - z_j[cols]) / k_diag[cols].clamp_min(torch.finfo(torch.float64).tiny)
    points = z_j.unsqueeze(1) + cond.columns(cols) * step.unsqueeze(0)  # the minimisers with one more column fixed
    columns = torch.cat([fixed.unsqueeze(0).expand(len(cols), -1), cols.unsqueeze(1)], 1)
    all_values = torch.cat([values.unsqueeze(0).expand(len(cols), -1), vals.unsqueeze(1)], 1)
    bounds = certified_points(node.q, node.lin, node.groups, node.counts, res.u, res.chol, points, columns,
                              all_values)
    return exclude(child, node.free[cols.numpy()], vals.numpy(), bounds.numpy() + node.const, node.target,
                   groups, counts)
