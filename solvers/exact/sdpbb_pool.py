"""Bounding one row's open ``sdpbb`` nodes in a pool of processes (the ``tree_workers`` setting).

The parent keeps the tree: the heap of open nodes, the incumbent, the closed
bound and the node count (:class:`solvers.exact.sdpbb_tree.Search`). It keeps
``tree_workers + 1`` nodes in flight (one waiting, so a worker that finishes
starts its next node without waiting for the parent), always the best open ones,
each sent with the pruning target of the incumbent at that moment, and applies
every expansion as it arrives (its candidate mask can lower the incumbent, its
children join the heap).

A worker holds a :class:`~solvers.exact.sdpbb_tree.RowBounder` of the row and bounds
one node per task exactly as the serial search would, so every bound is as valid;
what changes is the order of the nodes, and a node in flight is bounded against
the incumbent it was sent with (a better one found meanwhile only closes it later).

Why processes and not threads (measured on 2 cores, d = 96 and 128 rows): two
threads took the same wall time as one, since a Newton step of the barrier is
dozens of small tensor operations that each take Python's lock; two processes
each ran at one process's speed. A task carries a node (an int8 fixing and the
float64 multipliers, a few kilobytes) against ~10 ms of bounding at d = 128.

On a deadline or the node limit the parent stops sending nodes and collects the
nodes in flight (the barrier stops at the deadline with a certified bound), so
every node is either closed or has its children in the heap: the reported bound
stays valid.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

import torch

from solvers.exact.row_pool import pool_context
from solvers.exact.rows import RowQP
from solvers.exact.sdpbb_tree import Expansion, Node, RowBounder, Search

_BOUNDER: RowBounder | None = None
"""The worker's copy of the row (set once per worker process by :func:`_start_worker`)."""


def _start_worker(row: RowQP, gap_tol: float, threads: int) -> None:
    global _BOUNDER
    torch.set_num_threads(threads)
    _BOUNDER = RowBounder(row, gap_tol)


def _expand(node: Node, target: float, deadline_epoch: float | None) -> Expansion:
    """Worker task: bound one node by the deadline ``deadline_epoch`` (``time.time()`` seconds, a clock
    every process shares; a task can wait in the queue, so a span measured at sending would come late)."""
    deadline = None if deadline_epoch is None else time.perf_counter() + (deadline_epoch - time.time())
    return _BOUNDER.expand(node, target, deadline)


def expand_in_pool(search: Search, heap: list[Node]) -> None:
    """Run ``search`` on from the open nodes in ``heap`` with ``search.tree_workers`` processes.

    Returns when the heap is empty (the row is proved) or after the deadline or the node
    limit, with every node in flight applied; ``heap`` then holds the open nodes.
    """
    workers = search.tree_workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(), initializer=_start_worker,
                             initargs=(search.bounder.row, search.bounder.gap_tol, search.threads)) as pool:
        in_flight: dict[Future, Node] = {}
        stopping = False
        deadline_epoch = None if search.deadline is None else time.time() + (search.deadline - time.perf_counter())
        while True:
            while not stopping and len(in_flight) <= workers and heap:
                if search.should_stop():
                    stopping = True
                    break
                node = search.next_node(heap)
                if node is None:
                    break
                in_flight[pool.submit(_expand, node, search.target(), deadline_epoch)] = node
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
                search.absorb(heap, future.result())
