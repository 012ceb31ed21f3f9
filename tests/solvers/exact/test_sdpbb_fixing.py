"""Fixing columns of sdpbb nodes (solvers.exact.sdpbb_fixing): propagation, cutting away closed parts,
and the nodes the fixing saves in whole trees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solvers import generate
from solvers.exact import sdpbb_fixing, sdpbb_tree
from solvers.exact.rows import RowQP, row_problems
from solvers.exact.sdp_children import child_gains
from solvers.exact.sdpbb import run_search
from solvers.exact.sdpbb_fixing import FREE, KEEP, PRUNE, exclude, propagate
from solvers.exact.sdpbb_tree import Search


def test_propagate_fixes_what_the_counts_force():
    groups, counts = [np.arange(0, 4), np.arange(4, 8)], [2, 2]
    fix = np.full(8, FREE, dtype=np.int8)
    fix[[0, 1]] = PRUNE          # group 0 full: 2, 3 kept
    fix[[4, 5]] = KEEP           # group 1 needs both of 6, 7
    out = propagate(fix, groups, counts)
    assert out.tolist() == [PRUNE, PRUNE, KEEP, KEEP, KEEP, KEEP, PRUNE, PRUNE]
    fix[2] = PRUNE               # three pruned in a group of count 2
    assert propagate(fix, groups, counts) is None


def test_exclude_fixes_the_other_value_and_reports_the_smallest_cut():
    groups, counts = [np.arange(0, 4), np.arange(4, 8)], [2, 2]
    fix = np.full(8, FREE, dtype=np.int8)
    # z_0 = 1 (pruned) and z_4 = 0 (kept) are closed at 5.0 and 7.0; z_1 = 1 stays open at 2.0
    out, closed = exclude(fix, np.array([0, 4, 1]), np.array([1, 0, 1]), np.array([5.0, 7.0, 2.0]), 3.0,
                          groups, counts)
    assert closed == 5.0
    assert out[0] == KEEP and out[4] == PRUNE and out[1] == FREE
    # nothing reaches the target: the fixing is unchanged and nothing is reported closed
    same, none = exclude(fix, np.array([0]), np.array([1]), np.array([2.0]), 3.0, groups, counts)
    assert none is None and (same == fix).all()
    # both values of column 2 closed: nothing is left of the node
    gone, closed = exclude(fix, np.array([2, 2]), np.array([0, 1]), np.array([4.0, 6.0]), 3.0, groups, counts)
    assert gone is None and closed == 4.0
    # three columns of group 0 must be kept: it can no longer prune two
    gone, _ = exclude(fix, np.array([0, 1, 2]), np.array([1, 1, 1]), np.array([4.0, 4.0, 4.0]), 3.0,
                      groups, counts)
    assert gone is None


def _row(d: int, seed: int, pattern: str = "per-row") -> RowQP:
    row = row_problems(generate(family="small", d_in=d, d_out=1, seed=seed, pattern=pattern), None)[0]
    return RowQP(row.row, row.q, row.scale, row.groups, row.counts, None)


@pytest.mark.parametrize("pattern", ["per-row", "2:4"])
def test_fixing_closes_nodes_without_changing_the_optimum(pattern, monkeypatch):
    """The same rows without fixing, with one-column fixing, with one round in the children (the pairs
    with the branching column), and with up to eight rounds: each takes fewer nodes in all than the
    one before and proves the same objective (here 264 / 126 / 84 / 54 nodes per row and 133 / 63 / 40 / 29 for
    2:4 on three d = 48 rows)."""
    runs = {}
    for mode in ("none", "single", "pair", "rounds"):
        with monkeypatch.context() as patch:
            if mode == "none":
                patch.setattr(sdpbb_tree, "child_gains", _no_gain)
            patch.setattr(sdpbb_fixing, "CHILD_ROUNDS", {"none": 0, "single": 0, "pair": 1, "rounds": 8}[mode])
            runs[mode] = [run_search(Search(_row(48, seed, pattern), 1e-6, None, None)) for seed in range(3)]
    for outcomes in zip(*runs.values()):
        assert all(o.proved for o in outcomes)
        assert all(o.objective == pytest.approx(outcomes[0].objective, rel=2e-6) for o in outcomes)
    nodes = {mode: sum(o.nodes for o in outcomes) for mode, outcomes in runs.items()}
    assert nodes["rounds"] < nodes["pair"] < nodes["single"] < nodes["none"], nodes


def _no_gain(basis, z, chol):
    """``child_gains`` with every gain −inf: no child is screened, so nothing is fixed."""
    kmat, gain = child_gains(basis, z, chol)
    return kmat, torch.full_like(gain, -torch.inf)
