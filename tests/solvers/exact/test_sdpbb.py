"""The SDP branch-and-bound (solvers.exact.sdpbb): propagation, swap descent, node limit, settings.

Its bound is tested in ``test_sdp_bound.py``; its agreement with brute force in ``test_backend_contract.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solvers import generate, solve
from solvers.exact.rows import RowQP, row_problems
from solvers.exact.sdpbb import KEEP, PRUNE, propagate, sdpbb_row, swap_descent


def test_propagate_fixes_what_the_counts_force():
    groups, counts = [np.arange(0, 4), np.arange(4, 8)], [2, 2]
    fix = np.full(8, -1, dtype=np.int8)
    fix[[0, 1]] = PRUNE          # group 0 full: 2, 3 kept
    fix[[4, 5]] = KEEP           # group 1 needs both of 6, 7
    out = propagate(fix, groups, counts)
    assert out.tolist() == [PRUNE, PRUNE, KEEP, KEEP, KEEP, KEEP, PRUNE, PRUNE]
    fix[2] = PRUNE               # three pruned in a group of count 2
    assert propagate(fix, groups, counts) is None


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


def test_node_limit_gives_a_feasible_row_with_a_valid_bound():
    problem = generate(family="small", d_in=32, d_out=1, seed=1)
    row = row_problems(problem, None)[0]
    row = RowQP(row.row, row.q, row.scale, row.groups, row.counts, None)
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
