"""The tree of ``sdpbb`` (:mod:`solvers.exact.sdpbb`): its nodes, how one node is bounded and expanded,
and the serial bookkeeping of one row's search.

:class:`RowBounder` bounds and expands one node (it reads only the row and the pruning target, so
a worker process can hold a copy: :mod:`solvers.exact.sdpbb_pool`); :class:`Search` holds the open
nodes' heap, the incumbent and the closed bound. The loop that drives a search, serially or in a
pool, is :func:`solvers.exact.sdpbb.run_search`; this module imports neither of those modules.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from solvers.exact.rows import RowQP, diagonal_start
from solvers.exact.sdp_bound import GroupBasis, NodeBound, initial_multipliers, sdp_bound
from solvers.exact.sdp_children import certified_children, child_gains
from solvers.exact.sdpbb_fixing import FREE, KEEP, PRUNE, BoundedNode, fix_at_node, fix_in_child, propagate

CHILD_T_FACTOR = 2.0
"""A child restarts its barrier at ``CHILD_T_FACTOR ×`` the parent's final weight.

With the barrier's weight halved per centring (``sdp_bound.T_DECREASE``), 2 took the fewest Newton steps
over factors 1.5–30 (six real d = 128 and synthetic d = 96 rows, 1 thread: 14 935 steps at (½, 2) against
25 551 at (1/10, 10), the earlier pair, and 16 532 at (0.4, 3)); a factor of 1 more than doubled a real
d = 192 row's nodes."""


@dataclass(order=True)
class Node:
    """An open node, ordered by its parent's bound (best first), then by creation."""

    bound: float
    order: int
    fix: np.ndarray = field(compare=False)                # int8 [d]: FREE / KEEP / PRUNE
    u: np.ndarray | None = field(compare=False)           # float64 [d] parent's multipliers (None at the root)
    t: float = field(compare=False, default=1.0)          # barrier weight to restart from


@dataclass
class Expansion:
    """What bounding one node found: children to open, or the bound it was closed with, and a mask."""

    children: list[Node]
    closed: float | None = None                           # the node's bound when it was closed (pruned / leaf)
    candidate: tuple[np.ndarray, float] | None = None     # a feasible 0/1 vector (True = pruned) and its value


def swap_descent(q: np.ndarray, z: np.ndarray, groups: list[np.ndarray], max_swaps: int) -> tuple[np.ndarray, float]:
    """Best-improvement 1-swaps within groups from the 0/1 vector ``z``; returns ``(z, zᵀqz)``.

    Swapping pruned ``a`` for kept ``b`` changes the value by
    ``2(c_b − c_a) + q_aa + q_bb − 2 q_ab`` with ``c = q z``.
    """
    z = z.copy()
    zf = z.astype(np.float64)
    c = q @ zf
    value = float(zf @ c)
    diag = np.diag(q)
    for _ in range(max_swaps):
        best, pair = -1e-12 * max(abs(value), 1e-300), None
        for g in groups:
            a, b = g[z[g]], g[~z[g]]
            if not len(a) or not len(b):
                continue
            delta = (2 * (c[b][None, :] - c[a][:, None]) + diag[a][:, None] + diag[b][None, :]
                     - 2 * q[np.ix_(a, b)])
            i = int(np.argmin(delta))
            if delta.flat[i] < best:
                best, pair = float(delta.flat[i]), (a[i // len(b)], b[i % len(b)])
        if pair is None:
            break
        out, into = pair
        z[out], z[into] = False, True
        c += q[:, into] - q[:, out]
        value += best
    zf = z.astype(np.float64)
    return z, float(zf @ q @ zf)


BRANCH_POWER = 8
"""Branching score ``min(z_j, 1 − z_j) · q_jj^BRANCH_POWER`` (see :func:`choose_branch`)."""


def choose_branch(z: np.ndarray, diag: np.ndarray, allowed: np.ndarray | None = None) -> int:
    """Index of the free column to branch on: fractional *and* heavy.

    Plain "closest to ½" needed 1 267 nodes on a real d = 96 row where weighting by
    ``q_jj`` needed 137; over powers 1, 2, 3, 5 of ``q_jj`` the real d = 128 rows took
    1 119 / 637 / 487 / 407 and 685 / 499 / 417 / 327 nodes, with power 3 and 5 level
    on synthetic rows (d = 64, 96). With the barrier's later schedule (weight halved per
    centring, children at 2×) power 8 beat 5 on the six rows of the tuning set (real d = 128,
    synthetic d = 96: 2 584 vs 2 774 nodes, 12.3 vs 14.0 s); with the earlier schedule on a real
    d = 192 row 8 took 2 801 nodes against 3 129, and 12 as few (2 653); on a real d = 256 row
    powers 6 / 8 / 11 reached 2.0902 / 2.0911 / 2.0999 in 60 s (optimum 2.1924), level within
    the noise. Deciding the heaviest columns first fixes the largest terms of ``zᵀqz`` near
    the root.
    """
    zc = np.clip(z, 0.0, 1.0)
    score = np.minimum(zc, 1.0 - zc) * diag ** BRANCH_POWER
    if allowed is not None:
        score = np.where(allowed, score, -1.0)
    return int(np.argmax(score))


DESCENT_MEMORY = 4096
"""How many 1-swap descents a :class:`RowBounder` remembers (about ``2·d`` bytes each, key and mask); all are
forgotten when full."""


class RowBounder:
    """Bounds and expands nodes of one row; holds only the row's data, so a worker process can hold a copy."""

    def __init__(self, row: RowQP, gap_tol: float):
        self.row, self.gap_tol = row, gap_tol
        self.q_np = row.q
        self.q = torch.from_numpy(row.q)
        self.diag = np.diag(row.q)
        self.groups = [np.asarray(g, dtype=np.int64) for g in row.groups]
        self.counts = [int(c) for c in row.counts]
        self.descents: dict[bytes, tuple[np.ndarray, float]] = {}   # start vector → 1-swap descent's result

    def target_for(self, value: float) -> float:
        """Bound a node must reach to be pruned when the incumbent's value is ``value``."""
        return value - self.gap_tol * abs(value) - 1e-12

    def improve(self, z: np.ndarray) -> tuple[np.ndarray, float]:
        """1-swap descent from the feasible 0/1 vector ``z``, remembered per start vector.

        Nodes of one subtree often round to the same vector (on a real d = 256 row 28 % of
        the starts repeated an earlier one); the descent is deterministic, so a repeated start
        returns the stored result (a copy) instead of descending again.
        """
        key = z.tobytes()
        found = self.descents.get(key)
        if found is None:
            if len(self.descents) >= DESCENT_MEMORY:
                self.descents.clear()
            found = self.descents[key] = swap_descent(self.q_np, z, self.groups, 4 * self.row.d)
        return found[0].copy(), found[1]

    def root(self) -> Node:
        fix = propagate(np.full(self.row.d, FREE, dtype=np.int8), self.groups, self.counts)
        return Node(-math.inf, 0, fix, None, 1.0)

    def expand(self, node: Node, target: float, deadline: float | None) -> Expansion:
        """Bound ``node`` against ``target``; its children, or the bound that closes it.

        ``deadline`` is a ``time.perf_counter()`` instant of this process. The rounded SDP
        minimiser, improved by 1-swap descent, is returned as a candidate incumbent; a node
        whose bound reaches the target that candidate sets is closed too.
        """
        fix = node.fix
        free = np.flatnonzero(fix == FREE)
        pruned = np.flatnonzero(fix == PRUNE)
        if not len(free):
            z = fix == PRUNE
            v = self.row.value(z)
            return Expansion([], v, (z, v))
        pos = np.full(self.row.d, -1, dtype=np.int64)
        pos[free] = np.arange(len(free))
        sub_groups, sub_counts = [], []
        for g, c in zip(self.groups, self.counts):
            members = g[fix[g] == FREE]
            if len(members):
                sub_groups.append(torch.from_numpy(pos[members]))
                sub_counts.append(c - int((fix[g] == PRUNE).sum()))
        q_free = self.q[free]
        q_ss = q_free[:, free]
        lin = q_free[:, pruned].sum(1) if len(pruned) else torch.zeros(len(free), dtype=torch.float64)
        const = float(self.q_np[np.ix_(pruned, pruned)].sum()) if len(pruned) else 0.0
        if node.u is None:
            u = initial_multipliers(q_ss, GroupBasis(len(free), sub_groups))
        else:
            u = torch.from_numpy(node.u[free])
        res = sdp_bound(q_ss, lin, sub_groups, sub_counts, u, node.t, target=target - const, deadline=deadline)
        bound = res.bound + const
        if res.pruned or bound >= target:
            return Expansion([], bound)
        z_free = res.z.numpy()
        guess = fix == PRUNE
        for g, c in zip(sub_groups, sub_counts):
            g = g.numpy()
            guess[free[g[np.argsort(-z_free[g], kind="stable")[:c]]]] = True
        candidate = self.improve(guess)
        target = min(target, self.target_for(candidate[1]))
        if bound >= target:
            return Expansion([], bound, candidate)
        return self.split(node, free, sub_groups, sub_counts, q_ss, lin, const, res, bound, target, candidate)

    def split(self, node: Node, free: np.ndarray, sub_groups: list[torch.Tensor], sub_counts: list[int],
              q_ss: torch.Tensor, lin: torch.Tensor, const: float, res: NodeBound, bound: float, target: float,
              candidate: tuple[np.ndarray, float]) -> Expansion:
        """Fix what the node's multipliers close (:mod:`solvers.exact.sdpbb_fixing`), then branch.

        A column with both children closed closes the node; the smallest bound of what was
        cut away is reported as closed. The two children of the branching column start from
        the larger of the node's bound and their own certified bound, each after its own
        rounds of fixing.
        """
        kmat, gain = child_gains(GroupBasis(len(free), sub_groups), res.z, res.chol)
        bounded = BoundedNode(free, q_ss, lin, const, sub_groups, sub_counts, res, kmat, target)
        fix, closed = fix_at_node(node.fix, bounded, gain, self.groups, self.counts)
        if fix is None:
            return Expansion([], closed, candidate)
        if not (fix == FREE).any():                           # the fixings leave one mask
            z = fix == PRUNE
            v = self.row.value(z)
            return Expansion([], v if closed is None else min(closed, v), min(candidate, (z, v), key=lambda x: x[1]))
        pick = choose_branch(res.z.numpy(), self.diag[free], fix[free] == FREE)
        pair = certified_children(q_ss, lin, sub_groups, sub_counts, res.u, res.z, res.chol, kmat,
                                  torch.tensor([pick, pick]), torch.tensor([0, 1])).numpy() + const
        u_full = np.zeros(self.row.d) if node.u is None else node.u.copy()
        u_full[free] = res.u.numpy()
        children = []
        for value, lb in zip((KEEP, PRUNE), pair):
            child = fix.copy()
            child[free[pick]] = value
            child = propagate(child, self.groups, self.counts)
            cut = float(lb) if lb >= target else None
            if child is not None and cut is None:
                child, cut = fix_in_child(child, node.fix, bounded, self.groups, self.counts)
            if cut is not None:
                closed = cut if closed is None else min(closed, cut)
            if child is not None and lb < target:
                children.append(Node(max(bound, float(lb)), 0, child, u_full, max(res.t * CHILD_T_FACTOR, 1e-8)))
        return Expansion(children, closed, candidate)


class Search:
    """Best-first branch-and-bound over one row (see :mod:`solvers.exact.sdpbb`): the open nodes and the incumbent."""

    def __init__(self, row: RowQP, gap_tol: float, deadline: float | None, node_limit: int | None,
                 tree_workers: int = 1, threads: int = 1):
        self.bounder = RowBounder(row, gap_tol)
        self.deadline, self.node_limit = deadline, node_limit
        self.tree_workers, self.threads = tree_workers, threads
        start = row.warm if row.warm is not None else diagonal_start(row)
        self.incumbent, self.value = self.bounder.improve(start)
        self.nodes, self.closed_bound, self.order = 0, math.inf, 0
        self.timed_out = False

    def target(self) -> float:
        return self.bounder.target_for(self.value)

    def close(self, bound: float) -> None:
        self.closed_bound = min(self.closed_bound, bound)

    def should_stop(self) -> bool:
        """True once the deadline has passed (marks the row timed out) or the node limit is reached."""
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.timed_out = True
            return True
        return self.node_limit is not None and self.nodes >= self.node_limit

    def next_node(self, heap: list[Node]) -> Node | None:
        """Pop the best open node that the incumbent cannot close (closing those on the way); counts it."""
        while heap:
            node = heapq.heappop(heap)
            if node.bound >= self.target():
                self.close(node.bound)
                continue
            self.nodes += 1
            return node
        return None

    def absorb(self, heap: list[Node], found: Expansion) -> None:
        """Apply one node's expansion: the incumbent, the closed bound, the children (numbered in arrival order)."""
        if found.candidate is not None and found.candidate[1] < self.value:
            self.incumbent, self.value = found.candidate
        if found.closed is not None:
            self.close(found.closed)
        for child in found.children:
            self.order += 1
            child.order = self.order
            heapq.heappush(heap, child)
