"""``sdpbb``: exact rows by branch-and-bound on semidefinite bounds (pure torch, no MIP solver).

Each normalised row ``min zᵀ q z`` s.t. the group sums (:mod:`solvers.exact.rows`)
is solved by a best-first branch-and-bound:

* **node** = a partial fixing (pruned / kept / free). Fixing propagates through
  the group sums (a group whose count is reached keeps its free columns; one
  that needs all its free columns prunes them). With ``F₁`` the pruned columns
  and ``S`` the free ones the node problem is ``min z_Sᵀ q_SS z_S + 2 cᵀ z_S + κ``
  with ``c = q_{S,F₁} 1`` and ``κ = 1ᵀ q_{F₁F₁} 1``.
* **bound** = the Shor SDP bound of the node, computed by the barrier method of
  :mod:`solvers.exact.sdp_bound`, warm-started from the parent's multipliers ``u``
  (they stay strictly feasible: restricting a positive definite form to a
  subspace keeps it positive definite). A node stops as soon as its certified
  bound reaches the pruning target ``f* − gap_tol·f*`` (pruned) or a centred
  iterate shows its SDP value lies below the target (branched).
* **incumbent** = the warm start, improved at every branched node by rounding
  the SDP minimiser (the largest ``z_j`` of each group) followed by optimal
  1-swap descent within groups.
* **fixing** (:mod:`solvers.exact.sdpbb_fixing`): a node that is branched first bounds
  each one-column child from its own multipliers (:mod:`solvers.exact.sdp_children`, a
  rank-one update of the node's minimiser, certified by Frank–Wolfe); a child whose
  bound reaches the target is closed, so its column takes the other value in both
  children (reduced-cost fixing). Each child of the branching column then fixes, in
  rounds, the columns whose bound conditioned on everything it fixes below the node
  (the node's own fixings included) reaches the target
  (``sdpbb_fixing.CHILD_ROUNDS``). Six trees (real d = 128, synthetic d = 96, seeds
  0–2, 1 thread) took 2 416 nodes without fixing, 1 137 with the node's fixing, 825
  with one round in the children and 425 with up to eight (8 632 / 4 586 / 3 534 / 2 378
  Newton steps); real d = 256 seed 0 on one thread took 23 151 / 17 132 / 7 099 nodes.
  An earlier try of the node's fixing, before the barrier's fix and retuning of
  2026-11-30, gained nothing at d = 128 (README, *Exact solvers*). The gains need a node
  stopped short of the SDP optimum: there ``B`` turns singular, ``K_jj`` grows without
  bound and the gains vanish (``tests/solvers/exact/test_sdp_children.py`` compares 4
  and 400 Newton steps); nodes now stop early (``sdp_bound.UNCENTRED_SLACK``).
* **branching** on the free column maximising ``min(z_j, 1 − z_j) · q_jj⁸``
  (fractional and heavy; :func:`solvers.exact.sdpbb_tree.choose_branch`). Branching on the largest smaller
  child bound instead took 75 084 nodes on the six trees (with the node's fixing only),
  and on the most fixings in the children 18 675.

The row is ``proved`` when no open node has a bound below the target; the
reported bound is then the smallest bound of any closed node (≥ the target),
otherwise the smallest bound of the open nodes. Nodes are counted. A time limit
gives ``time_limit``; the ``node_limit`` setting stops a row as ``feasible``.

Bounding a node (:meth:`solvers.exact.sdpbb_tree.RowBounder.expand`) reads only the row and the pruning
target, so open nodes can be bounded in parallel: with the ``tree_workers``
setting above 1, a tree still open after ``PARALLEL_AFTER_NODES`` nodes goes on
in a pool of that many processes (:mod:`solvers.exact.sdpbb_pool`; threads do
not help, the barrier's many small tensor operations serialise on Python's
lock). The tree is then explored in an order that depends on timing, so node
counts can vary between runs; a proved row's objective does not (it is within
``gap_tol`` of the optimum either way).

Why this backend (measured here, 1 thread, SmolLM2-135M layer-10 q_proj crops,
k = d/2; see ``python -m bench.studies.exact_speed``): the root SDP bound closes most of
the gap the plain convex relaxation leaves (d = 128: 4.95 vs 3.33 with optimum
5.79; Gurobi's own root 3.88). On a d = 64 row a fixed root shift (the QCR method,
bounds by projected gradient) needed 10 391 nodes, re-solving the SDP at every node
383, and branching on ``min(z_j, 1 − z_j)·q_jj⁵`` instead of "closest to ½" 115 (a
d = 96 row: 1 267 → 137). On the benchmark's d = 128 real rows the median tree has
407 nodes against Gurobi's 9 235 (README, *Exact solvers*).
"""

from __future__ import annotations

import math
import time

from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows, solver_threads
from solvers.exact.rows import RowOutcome, RowQP
from solvers.exact.sdpbb_pool import expand_in_pool
from solvers.exact.sdpbb_tree import Search
from solvers.registration import register_solver

PARALLEL_AFTER_NODES = 64
"""With ``tree_workers > 1`` a tree still open after this many nodes goes on in a process pool.

Starting the pool costs tens of milliseconds per process; most rows of a real layer
close in fewer nodes (median 55 at d = 64, README *Exact solvers*)."""


def run_search(search: Search) -> RowOutcome:
    """Expand ``search``'s tree from its root until it is proved, the deadline or the node limit; with
    ``tree_workers > 1`` a tree still open after :data:`PARALLEL_AFTER_NODES` nodes goes on in a pool."""
    heap = [search.bounder.root()]
    while heap and not search.should_stop():
        if search.tree_workers > 1 and search.nodes >= PARALLEL_AFTER_NODES:
            expand_in_pool(search, heap)
            break
        node = search.next_node(heap)
        if node is not None:
            search.absorb(heap, search.bounder.expand(node, search.target(), search.deadline))
    open_bound = min((n.bound for n in heap), default=math.inf)
    bound = min(search.closed_bound, open_bound, search.value)
    return RowOutcome(search.incumbent, bound, search.value, proved=not heap, timed_out=search.timed_out,
                      nodes=search.nodes)


def sdpbb_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Solve one normalised row by SDP branch-and-bound; see the module docstring."""
    t0 = time.perf_counter()
    with solver_threads(options["threads"]):
        deadline = None if time_limit is None else t0 + float(time_limit)
        search = Search(row, float(options["gap_tol"]), deadline, options["node_limit"],
                        options.get("tree_workers", 1), options["threads"])
        t1 = time.perf_counter()
        out = run_search(search)
    out.build_seconds, out.solve_seconds = t1 - t0, time.perf_counter() - t1
    return out


@register_solver("sdpbb", "exact", "branch-and-bound on Shor SDP bounds (barrier method, pure torch), per row",
                 uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({"node_limit": (int, type(None)), "tree_workers": (int,)}))
def solve_sdpbb(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``node_limit`` (None = unlimited nodes per row), ``tree_workers`` (processes bounding
    one row's open nodes, default 1; each runs ``threads`` torch threads, and ``workers`` rows run at
    once, so ``workers × tree_workers`` processes in all), plus the common exact settings
    (:mod:`solvers.exact.row_pool`). Deterministic with ``tree_workers = 1``; ``seed`` is unused."""
    opts = exact_settings(settings, {"node_limit": None, "tree_workers": 1})
    if opts["node_limit"] is not None and (not isinstance(opts["node_limit"], int) or opts["node_limit"] < 1):
        raise ValueError(f"node_limit must be a positive integer, got {opts['node_limit']!r}")
    if not isinstance(opts["tree_workers"], int) or isinstance(opts["tree_workers"], bool) \
            or opts["tree_workers"] < 1:
        raise ValueError(f"tree_workers must be a positive integer, got {opts['tree_workers']!r}")
    return solve_rows(problem, warm_start, "sdpbb", sdpbb_row, time_limit, opts)
