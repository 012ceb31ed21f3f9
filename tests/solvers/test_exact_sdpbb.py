"""The SDP bound (solvers.exact.sdp_bound) and the branch-and-bound built on it (solvers.exact.sdpbb)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from solvers import generate, solve
from solvers.exact.rows import RowQP, row_problems
from solvers.exact.sdp_bound import GroupBasis, initial_multipliers, sdp_bound
from solvers.exact.sdpbb import KEEP, PRUNE, propagate, sdpbb_row, swap_descent


def brute(q: np.ndarray, c: np.ndarray, groups, counts) -> float:
    """min zᵀqz + 2cᵀz over the 0/1 vectors with the group sums, by enumeration."""
    best = np.inf
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(q.shape[0])
        for p in pick:
            z[list(p)] = 1.0
        best = min(best, z @ q @ z + 2 * c @ z)
    return best


def random_node(seed: int, d: int, nm: bool):
    """An ill-conditioned PSD q (outlier channel, a dead input, duplicated columns) with a linear term."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3 * d, d))
    x[:, 0] *= 30.0
    x[:, 1] = 0.0
    x[:, 3] = x[:, 2]
    w = rng.standard_normal(d)
    q = (x.T @ x) * np.outer(w, w)
    q /= np.mean(np.diag(q))
    c = rng.standard_normal(d) * (seed % 2)
    if nm:
        groups = [np.arange(s, s + 4) for s in range(0, d, 4)]
        counts = [2] * len(groups)
    else:
        groups, counts = [np.arange(d)], [d // 2]
    return q, c, groups, counts


@pytest.mark.parametrize("nm", [False, True])
def test_sdp_bound_is_a_valid_lower_bound(nm):
    for seed in range(12):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct = torch.from_numpy(q), torch.from_numpy(c)
        gt = [torch.from_numpy(g) for g in groups]
        u0 = initial_multipliers(qt, GroupBasis(12, gt))
        res = sdp_bound(qt, ct, gt, counts, u0, 1.0)
        opt = brute(q, c, groups, counts)
        assert res.bound <= opt + 1e-9 * max(1.0, abs(opt)), (seed, res.bound, opt)
        # the barrier climbed from its start: better than the constant shift it began with
        start = sdp_bound(qt, ct, gt, counts, u0, 1.0, max_iterations=0)
        assert res.bound >= start.bound - 1e-12
        assert not res.pruned and res.iterations > 0


def test_sdp_bound_is_tight_on_a_diagonal_objective():
    """For diagonal q the optimum (the k smallest q_jj) is the SDP value; the barrier gets within 1e-6."""
    rng = np.random.default_rng(0)
    diag = rng.uniform(0.1, 3.0, 16)
    q = torch.diag(torch.from_numpy(diag))
    groups = [torch.arange(16)]
    res = sdp_bound(q, torch.zeros(16, dtype=torch.float64), groups, [8], initial_multipliers(q, GroupBasis(16, groups)), 1.0)
    opt = np.sort(diag)[:8].sum()
    assert opt * (1 - 1e-6) <= res.bound <= opt * (1 + 1e-12)


def test_sdp_bound_stops_at_the_target():
    q, c, groups, counts = random_node(3, 12, False)
    qt, gt = torch.from_numpy(q), [torch.from_numpy(g) for g in groups]
    u0 = initial_multipliers(qt, GroupBasis(12, gt))
    full = sdp_bound(qt, torch.from_numpy(c), gt, counts, u0, 1.0)
    low = sdp_bound(qt, torch.from_numpy(c), gt, counts, u0, 1.0, target=full.bound - 0.1 * abs(full.bound) - 1e-3)
    assert low.pruned and low.bound >= full.bound - 0.1 * abs(full.bound) - 1e-3
    assert low.iterations <= full.iterations


def test_group_basis_keeps_group_sums():
    groups = [torch.arange(0, 4), torch.arange(4, 7), torch.arange(7, 12)]
    basis = GroupBasis(12, groups)
    y = torch.randn(basis.dim, dtype=torch.float64)
    step = basis.lift(y)
    for g in groups:
        assert abs(float(step[g].sum())) < 1e-12
    dense = torch.stack([basis.lift(e) for e in torch.eye(basis.dim, dtype=torch.float64)], 1)
    mat = torch.randn(12, 12, dtype=torch.float64)
    mat = mat + mat.T
    u = torch.randn(12, dtype=torch.float64)
    assert torch.allclose(basis.project(mat), dense.T @ mat @ dense)
    assert torch.allclose(basis.project_diag(u), dense.T @ torch.diag(u) @ dense)
    inner = torch.randn(basis.dim, basis.dim, dtype=torch.float64)
    assert torch.allclose(basis.sandwich(inner), dense @ inner @ dense.T)


def test_propagate_fixes_what_the_counts_force():
    groups, counts = [np.arange(0, 4), np.arange(4, 8)], [2, 2]
    fix = np.full(8, -1, dtype=np.int8)
    fix[[0, 1]] = PRUNE          # group 0 full: 2, 3 kept
    fix[[4, 5]] = KEEP           # group 1 needs both of 6, 7
    out = propagate(fix, groups, counts)
    assert out.tolist() == [PRUNE, PRUNE, KEEP, KEEP, KEEP, KEEP, PRUNE, PRUNE]
    fix[2] = PRUNE               # three pruned in a group of count 2
    assert propagate(fix, groups, counts) is None


def test_swap_descent_ends_one_swap_optimal():
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
