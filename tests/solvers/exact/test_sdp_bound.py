"""The SDP lower bound of one branch-and-bound node (solvers.exact.sdp_bound)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from solvers.exact.sdp_bound import GroupBasis, initial_multipliers, sdp_bound, solve_with_factor


@pytest.mark.parametrize("nm", [False, True])
def test_sdp_bound_is_a_valid_lower_bound(nm, random_node, brute_node):
    for seed in range(12):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct = torch.from_numpy(q), torch.from_numpy(c)
        gt = [torch.from_numpy(g) for g in groups]
        u0 = initial_multipliers(qt, GroupBasis(12, gt))
        res = sdp_bound(qt, ct, gt, counts, u0, 1.0)
        opt = brute_node(q, c, groups, counts)
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


def test_sdp_bound_stops_at_the_target(random_node):
    q, c, groups, counts = random_node(3, 12, False)
    qt, gt = torch.from_numpy(q), [torch.from_numpy(g) for g in groups]
    u0 = initial_multipliers(qt, GroupBasis(12, gt))
    full = sdp_bound(qt, torch.from_numpy(c), gt, counts, u0, 1.0)
    low = sdp_bound(qt, torch.from_numpy(c), gt, counts, u0, 1.0, target=full.bound - 0.1 * abs(full.bound) - 1e-3)
    assert low.pruned and low.bound >= full.bound - 0.1 * abs(full.bound) - 1e-3
    assert low.iterations <= full.iterations


GROUP_LAYOUTS = {"groups": [torch.arange(0, 4), torch.arange(4, 7), torch.arange(7, 12)],
                 "one group": [torch.arange(12)]}


@pytest.mark.parametrize("layout", list(GROUP_LAYOUTS))
def test_group_basis_keeps_group_sums(layout):
    groups = GROUP_LAYOUTS[layout]
    basis = GroupBasis(12, groups)
    assert basis.single == (len(groups) == 1)
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


def test_one_group_slices_match_the_index_lists():
    """The sliced path of a per-row node computes exactly what the general (indexed) path computes,
    except ``minus_diag`` and ``sandwich``, which sum in another order: equal up to rounding."""
    groups = [torch.arange(12)]
    sliced, indexed = GroupBasis(12, groups), GroupBasis(12, groups, slices=False)
    assert sliced.single and not indexed.single
    gen = torch.Generator().manual_seed(3)
    mat = torch.randn(12, 12, dtype=torch.float64, generator=gen)
    mat = mat + mat.T
    u = torch.randn(12, dtype=torch.float64, generator=gen)
    y = torch.randn(11, dtype=torch.float64, generator=gen)
    inner = torch.randn(11, 11, dtype=torch.float64, generator=gen)
    assert torch.equal(sliced.project(mat), indexed.project(mat))
    assert torch.equal(sliced.project_diag(u), indexed.project_diag(u))
    assert torch.equal(sliced.t_vec(u), indexed.t_vec(u))
    assert torch.equal(sliced.lift(y), indexed.lift(y))
    torch.testing.assert_close(sliced.sandwich(inner), indexed.sandwich(inner), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(sliced.minus_diag(mat[:11, :11], u), indexed.minus_diag(mat[:11, :11], u),
                               rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(sliced.minus_diag(mat[:11, :11], u), mat[:11, :11] - indexed.project_diag(u),
                               rtol=1e-14, atol=1e-14)


def test_reported_weight_is_where_the_barrier_stopped(random_node):
    """A branched node hands its children the barrier weight it reached, even when its best ``h`` is its start.

    Restarted at the SDP optimum's multipliers with a weight of 1e4 and a target it cannot reach, the barrier
    walks ``t`` down until an iterate shows the node's value below the target; no iterate beats the
    start's ``h``. Reporting the start's weight instead made children restart ever higher (× 10 per
    generation), and real d = 256 nodes took 160 Newton steps instead of 20.
    """
    q, c, groups, counts = random_node(5, 12, False)
    qt, ct, gt = torch.from_numpy(q), torch.from_numpy(c), [torch.from_numpy(g) for g in groups]
    full = sdp_bound(qt, ct, gt, counts, initial_multipliers(qt, GroupBasis(12, gt)), 1.0)
    again = sdp_bound(qt, ct, gt, counts, full.u, 1e4, target=full.h + 1.0)
    assert not again.pruned and again.iterations > 0
    assert again.h == full.h                                # the start stayed the best iterate
    assert again.t < 1e4                                    # ... yet the weight it reports came down


def test_a_node_out_of_reach_gives_up_after_one_newton_step(random_node):
    """``h + t·dim B`` below the target after a step: the node stops uncentred, with a certified bound."""
    q, c, groups, counts = random_node(4, 12, False)
    qt, ct, gt = torch.from_numpy(q), torch.from_numpy(c), [torch.from_numpy(g) for g in groups]
    u0 = initial_multipliers(qt, GroupBasis(12, gt))
    full = sdp_bound(qt, ct, gt, counts, u0, 1.0)
    far = full.h + 12.0 + 1.0                                # above h + t·dim at t = 1 for any h ≤ full.h
    res = sdp_bound(qt, ct, gt, counts, u0, 1.0, target=far)
    assert not res.pruned and res.iterations == 1 and res.t == 1.0
    assert res.bound <= full.bound + 1e-12                  # still a certified (weaker) lower bound
    centred = sdp_bound(qt, ct, gt, counts, u0, 1.0, max_iterations=1)
    assert res.bound == centred.bound                        # the same single step


def test_solve_with_factor_matches_cholesky_solve():
    """Two triangular solves give ``cholesky_solve``'s answer (the barrier's Newton step and minimiser)."""
    gen = torch.Generator().manual_seed(0)
    for m in (1, 7, 64):
        a = torch.randn(m, m + 3, dtype=torch.float64, generator=gen)
        chol = torch.linalg.cholesky(a @ a.T + 1e-3 * torch.eye(m, dtype=torch.float64))
        rhs = torch.randn(m, dtype=torch.float64, generator=gen)
        x = solve_with_factor(chol, rhs)
        torch.testing.assert_close(x, torch.cholesky_solve(rhs.unsqueeze(1), chol).squeeze(1), rtol=1e-10, atol=0)
        torch.testing.assert_close(chol @ (chol.T @ x), rhs, rtol=1e-8, atol=1e-8)
