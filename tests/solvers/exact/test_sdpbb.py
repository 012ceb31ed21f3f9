"""The SDP branch-and-bound (solvers.exact.sdpbb): propagation, swap descent, node limit, settings,
and the process pool of ``tree_workers`` (solvers.exact.sdpbb_pool): proofs, node limit, deadline.

Its bound is tested in ``test_sdp_bound.py``; its agreement with brute force in ``test_backend_contract.py``.
"""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest
import torch

from solvers import generate, solve
from solvers.exact import sdpbb, sdpbb_pool, sdpbb_tree
from solvers.exact.rows import RowQP, row_problems
from solvers.exact.sdpbb import run_search, sdpbb_row
from solvers.exact.sdpbb_pool import expand_in_pool
from solvers.exact.sdpbb_tree import RowBounder, Search, swap_descent


def test_swap_descent_ends_one_swap_optimal(random_node):
    q, _, groups, counts = random_node(5, 12, True)
    z = np.zeros(12, dtype=bool)
    for g, k in zip(groups, counts):
        z[g[:k]] = True
    z, value = swap_descent(q, z, groups, 100)
    assert value == pytest.approx(z.astype(float) @ q @ z.astype(float), rel=1e-12)
    for g in groups:
        for a in g[z[g]]:
            for b in g[~z[g]]:
                other = z.copy()
                other[a], other[b] = False, True
                assert other.astype(float) @ q @ other.astype(float) >= value * (1 - 1e-12) - 1e-15


def test_improve_remembers_descents_without_sharing_them(monkeypatch):
    """A repeated start gives the stored descent (one descent for two calls); the caller's copy can be
    changed without changing what is stored, and a full memory is emptied rather than grown."""
    row = _plain_row(24, 3)
    bounder = RowBounder(row, 1e-6)
    calls = []
    monkeypatch.setattr(sdpbb_tree, "swap_descent", lambda *a: calls.append(1) or swap_descent(*a))
    start = np.zeros(24, dtype=bool)
    start[:row.counts[0]] = True
    first = bounder.improve(start)
    first[0][:] = False
    second = bounder.improve(start.copy())
    assert len(calls) == 1 and second[0].sum() == row.counts[0]
    np.testing.assert_array_equal(second[0], swap_descent(row.q, start, bounder.groups, 4 * 24)[0])
    monkeypatch.setattr(sdpbb_tree, "DESCENT_MEMORY", 1)
    other = np.roll(start, 5)
    bounder.improve(other)
    assert len(calls) == 2 and list(bounder.descents) == [other.tobytes()]


def _plain_row(d: int, seed: int, pattern: str = "per-row") -> RowQP:
    problem = generate(family="small", d_in=d, d_out=1, seed=seed, pattern=pattern)
    row = row_problems(problem, None)[0]
    return RowQP(row.row, row.q, row.scale, row.groups, row.counts, None)


def test_node_limit_gives_a_feasible_row_with_a_valid_bound():
    row = _plain_row(32, 1)
    capped = sdpbb_row(row, None, {"threads": 1, "gap_tol": 1e-6, "node_limit": 1})
    full = sdpbb_row(row, None, {"threads": 1, "gap_tol": 1e-6, "node_limit": None})
    assert full.proved and not capped.proved and capped.nodes == 1
    assert row.is_feasible(capped.z) and capped.bound <= full.objective * (1 + 1e-9)
    assert full.bound <= full.objective and full.bound >= full.objective * (1 - 2e-6)


def test_torch_threads_are_restored_and_settings_checked():
    problem = generate(family="tiny", d_in=12, d_out=2, seed=0)
    before = torch.get_num_threads()
    res = solve("sdpbb", problem, warm_start="wanda", workers=1, threads=1)
    assert res.status == "optimal" and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="node_limit"):
        solve("sdpbb", problem, warm_start="wanda", node_limit=0)


def _run_in_pool(row: RowQP, deadline: float | None = None, node_limit: int | None = None):
    """The whole tree of ``row``, from its root, in a pool of two; returns the search and the open nodes."""
    search = Search(row, 1e-6, deadline, node_limit, tree_workers=2)
    heap = [search.bounder.root()]
    expand_in_pool(search, heap)
    return search, heap


@pytest.mark.parametrize("d, seed, pattern", [(32, 0, "per-row"), (32, 0, "2:4")])
def test_tree_in_a_process_pool_proves_the_serial_optimum(d, seed, pattern):
    """The pool bounds every node of the tree (started from the root) and proves what the serial search proves."""
    row = _plain_row(d, seed, pattern)
    serial = run_search(Search(row, 1e-6, None, None))
    search, heap = _run_in_pool(row)
    assert serial.proved and not heap and search.nodes > 1
    assert row.is_feasible(search.incumbent)
    assert search.value == pytest.approx(row.value(search.incumbent), rel=1e-12)
    assert search.value <= serial.objective * (1 + 2e-6) and serial.objective <= search.value * (1 + 2e-6)
    assert search.closed_bound <= search.value and search.closed_bound >= search.value * (1 - 2e-6)


def test_pool_runs_under_a_fork_server(monkeypatch):
    """Where CUDA is initialised the pool starts its workers from a fork server: everything it sends pickles."""
    monkeypatch.setattr(sdpbb_pool, "pool_context", lambda: multiprocessing.get_context("forkserver"))
    row = _plain_row(24, 1)
    serial = run_search(Search(row, 1e-6, None, None))
    search, heap = _run_in_pool(row)
    assert not heap and search.value == pytest.approx(serial.objective, rel=2e-6)


def test_pool_stops_at_the_node_limit_and_keeps_the_open_nodes():
    row = _plain_row(32, 0)
    search, heap = _run_in_pool(row, node_limit=20)
    full = run_search(Search(row, 1e-6, None, None))
    assert search.nodes == 20 and heap                     # counted when sent: exactly the limit
    assert min(n.bound for n in heap) <= full.objective * (1 + 1e-9)


def test_pool_stops_at_the_deadline_with_a_valid_bound():
    """Nodes in flight at the deadline are collected: each is closed or has its children open.

    The tree has 262 nodes (0.7 s here on one process), so 0.2 s stops it; on a machine fast enough to
    finish first the row must be proved instead. Once stopped, no node leaves the heap again.
    """
    row = _plain_row(80, 0)
    full = run_search(Search(row, 1e-6, None, None))
    search, heap = _run_in_pool(row, deadline=time.perf_counter() + 0.2)
    assert search.timed_out == bool(heap)
    assert min([search.closed_bound] + [n.bound for n in heap]) <= full.objective * (1 + 1e-9)
    assert row.is_feasible(search.incumbent)


def test_tree_workers_through_solve(monkeypatch):
    """With the switch at node 0 the whole tree runs in the pool; same proved objective as one process."""
    monkeypatch.setattr(sdpbb, "PARALLEL_AFTER_NODES", 0)
    problem = generate(family="small", d_in=24, d_out=3, seed=4)
    one = solve("sdpbb", problem, warm_start="wanda", workers=1)
    two = solve("sdpbb", problem, warm_start="wanda", workers=1, tree_workers=2)
    assert one.status == two.status == "optimal"
    assert two.objective == pytest.approx(one.objective, rel=2e-6)
    assert two.settings["tree_workers"] == 2
    with pytest.raises(ValueError, match="tree_workers"):
        solve("sdpbb", problem, warm_start="wanda", tree_workers=0)
