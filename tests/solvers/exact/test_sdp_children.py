"""Children's bounds from a node's own multipliers (solvers.exact.sdp_children)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from solvers.exact.sdp_bound import EPS, GroupBasis, initial_multipliers, sdp_bound
from solvers.exact.sdp_children import certified_children, certified_points, child_gains, conditioned


def _child_optima(q: np.ndarray, c: np.ndarray, groups, counts) -> np.ndarray:
    """[m, 2]: min zᵀqz + 2cᵀz over the feasible 0/1 vectors with z_j = v, by enumeration (inf if none)."""
    out = np.full((q.shape[0], 2), np.inf)
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(q.shape[0])
        for p in pick:
            z[list(p)] = 1.0
        value = z @ q @ z + 2 * c @ z
        rows = np.arange(q.shape[0])
        out[rows, z.astype(int)] = np.minimum(out[rows, z.astype(int)], value)
    return out


def _node_bound(q, c, groups, counts, newton_steps):
    qt, ct = torch.from_numpy(q), torch.from_numpy(c)
    gt = [torch.from_numpy(g) for g in groups]
    u0 = initial_multipliers(qt, GroupBasis(q.shape[0], gt))
    return qt, ct, gt, sdp_bound(qt, ct, gt, counts, u0, 1.0, max_iterations=newton_steps)


def _all_children(q, c, groups, counts, newton_steps=400):
    """Certified and closed-form bounds of every child, both [m, 2], and the node's bound."""
    qt, ct, gt, res = _node_bound(q, c, groups, counts, newton_steps)
    m = q.shape[0]
    kmat, gain = child_gains(GroupBasis(m, gt), res.z, res.chol)
    cols = torch.arange(m).repeat_interleave(2)
    vals = torch.tensor([0, 1]).repeat(m)
    certified = certified_children(qt, ct, gt, counts, res.u, res.z, res.chol, kmat, cols, vals)
    return certified.reshape(m, 2).numpy(), (res.h + gain.T).numpy(), res


@pytest.mark.parametrize("newton_steps", [4, 400])
@pytest.mark.parametrize("nm", [False, True])
def test_children_bounds_are_valid_and_match_the_closed_form(nm, newton_steps, random_node):
    """Every child's certified bound is below its optimum by enumeration, at least the node's own
    bound, and equal to ``h + (v − z̄_j)² / K_jj`` up to rounding; for a node stopped early (as the
    search stops them) as for a converged one."""
    lift = []
    for seed in range(8):
        q, c, groups, counts = random_node(seed, 12, nm)
        certified, closed_form, res = _all_children(q, c, groups, counts, newton_steps)
        optima = _child_optima(q, c, groups, counts)
        scale = max(1.0, float(np.abs(optima[np.isfinite(optima)]).max()))
        assert (certified <= optima + 1e-9 * scale).all(), seed
        assert (certified >= res.bound - 1e-9 * scale).all(), seed
        np.testing.assert_allclose(certified, closed_form, rtol=1e-7, atol=1e-7 * scale)
        lift.append((certified.max() - res.bound) / (optima.min() - res.bound))
    if newton_steps == 4:
        # a node stopped early has a child bounded above the node's optimum: with the incumbent at the
        # optimum, that child is closed and its column fixed
        assert min(lift) > 1.0, lift


def _pair_gain(kmat: torch.Tensor, z: torch.Tensor, column: int, value: int) -> torch.Tensor:
    """[2, m]: ``δᵀ K_P⁻¹ δ`` with ``δ = (value − z̄_column, w − z̄_i)`` and ``K_P`` the 2×2 block on (column, i)."""
    out = torch.zeros(2, len(z), dtype=torch.float64)
    for i in range(len(z)):
        if i == column:
            continue
        block = kmat[[column, i]][:, [column, i]]
        for w in (0, 1):
            delta = torch.stack([value - z[column], w - z[i]])
            out[w, i] = delta @ torch.linalg.solve(block, delta)
    return out


@pytest.mark.parametrize("nm", [False, True])
def test_pair_bounds_are_valid_and_match_the_closed_form(nm, random_node):
    """Two fixed columns: the certified bound is below the optimum by enumeration, at least the
    one-column child's bound, and equal to ``h + δᵀ K_P⁻¹ δ`` up to rounding."""
    for seed in range(6):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt, res = _node_bound(q, c, groups, counts, 4)
        kmat, gain = child_gains(GroupBasis(12, gt), res.z, res.chol)
        for column, value in ((seed, 0), (seed + 3, 1)):
            others = torch.tensor([i for i in range(12) if i != column])
            closed_form = res.h + _pair_gain(kmat, res.z, column, value)[:, others]        # [2, 11]
            cols = torch.stack([torch.full((22,), column), others.repeat(2)], 1)
            vals = torch.stack([torch.full((22,), value), torch.tensor([0, 1]).repeat_interleave(11)], 1)
            certified = certified_children(qt, ct, gt, counts, res.u, res.z, res.chol, kmat, cols, vals)
            certified = certified.reshape(2, 11).numpy()
            optima = _fixed_optima(q, c, groups, counts, {column: value})[:, others.numpy()]
            scale = max(1.0, float(np.abs(optima[np.isfinite(optima)]).max()))
            assert (certified <= optima + 1e-9 * scale).all(), (seed, column)
            single = res.h + gain[value, column].item()
            assert (certified >= single - 1e-7 * scale).all(), (seed, column)
            np.testing.assert_allclose(certified, closed_form.numpy(), rtol=1e-7, atol=1e-7 * scale)


def test_children_bounds_survive_a_few_ulps_of_rounding(random_node):
    """A different CPU rounds q differently: the certified bounds move by rounding only, never above an optimum."""
    q, c, groups, counts = random_node(2, 12, False)
    rng = np.random.default_rng(0)
    shaken = q * (1 + 4 * EPS * rng.choice([-1.0, 1.0], size=q.shape))
    shaken = (shaken + shaken.T) / 2
    base, _, _ = _all_children(q, c, groups, counts)
    moved, _, _ = _all_children(shaken, c, groups, counts)
    optima = _child_optima(shaken, c, groups, counts)
    assert (moved <= optima + 1e-9).all()
    np.testing.assert_allclose(moved, base, rtol=1e-6, atol=1e-9)


def _fixed_optima(q, c, groups, counts, fixed: dict[int, int]) -> np.ndarray:
    """[2, m]: min zᵀqz + 2cᵀz with ``z_j = fixed[j]`` and ``z_i = w``, by enumeration (inf if none)."""
    out = np.full((2, q.shape[0]), np.inf)
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(q.shape[0])
        for p in pick:
            z[list(p)] = 1.0
        if any(z[j] != v for j, v in fixed.items()):
            continue
        rows = np.arange(q.shape[0])
        out[z.astype(int), rows] = np.minimum(out[z.astype(int), rows], z @ q @ z + 2 * c @ z)
    return out


@pytest.mark.parametrize("nm", [False, True])
def test_conditioned_children_are_valid_and_extend_the_pairs(nm, random_node):
    """Conditioned on fixed columns J, the child's minimiser and Schur complement give bounds of one
    more fixed column: below the optimum by enumeration, equal to the closed form, and for one fixed
    column the same as the pair formula."""
    for seed in range(4):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt, res = _node_bound(q, c, groups, counts, 4)
        kmat, _ = child_gains(GroupBasis(12, gt), res.z, res.chol)
        for fixed in ({seed: 1}, {seed: 0, seed + 5: 1}, {1: 1, 6: 0, 10: 0}):
            cols = torch.tensor(list(fixed))
            vals = torch.tensor(list(fixed.values()))
            cond = conditioned(kmat, res.z, cols, vals)
            z_j, lift = cond.z, cond.lift
            k_j = cond.columns(torch.arange(12))
            schur = kmat - kmat[:, cols] @ torch.linalg.solve(kmat[cols][:, cols], kmat[cols])
            torch.testing.assert_close(k_j, schur, rtol=1e-9, atol=1e-9 * float(kmat.abs().max()))
            torch.testing.assert_close(cond.diagonal(), torch.diagonal(schur), rtol=1e-9,
                                       atol=1e-9 * float(kmat.abs().max()))
            others = torch.tensor([i for i in range(12) if i not in fixed])
            kd = cond.diagonal()[others]
            gain = torch.stack([z_j[others] ** 2, (1 - z_j[others]) ** 2]) / kd
            if len(fixed) == 1:
                torch.testing.assert_close(gain + lift, _pair_gain(kmat, res.z, seed, fixed[seed])[:, others],
                                           rtol=1e-8, atol=1e-10)
            n = len(others)
            w = torch.tensor([0, 1]).repeat_interleave(n)
            step = (w.to(torch.float64) - z_j[others].repeat(2)) / kd.repeat(2)
            points = z_j.unsqueeze(1) + k_j[:, others.repeat(2)] * step.unsqueeze(0)
            columns = torch.cat([cols.unsqueeze(0).expand(2 * n, -1), others.repeat(2).unsqueeze(1)], 1)
            values = torch.cat([vals.unsqueeze(0).expand(2 * n, -1), w.unsqueeze(1)], 1)
            certified = certified_points(qt, ct, gt, counts, res.u, res.chol, points, columns, values)
            certified = certified.reshape(2, n).numpy()
            optima = _fixed_optima(q, c, groups, counts, fixed)[:, others.numpy()]
            scale = max(1.0, float(np.abs(optima[np.isfinite(optima)]).max()))
            assert (certified <= optima + 1e-9 * scale).all(), (seed, fixed)
            np.testing.assert_allclose(certified, (res.h + lift + gain).numpy(), rtol=1e-7, atol=1e-7 * scale)


def test_a_bad_point_gives_a_weaker_bound_never_an_invalid_one(random_node):
    """A point off the child's affine set (as an inaccurate solve can give) is moved back onto it.

    At a converged node ``q − diag u`` is slightly indefinite on the whole space (positive definite
    only on the affine directions), so points pushed along its most negative eigenvector would give
    bounds above the optimum (by 2.3 at a push of 10, without the repair); non-finite points give −inf.
    """
    q, c, groups, counts = random_node(2, 12, False)
    qt, ct, gt, res = _node_bound(q, c, groups, counts, 400)
    eigenvalues, vectors = np.linalg.eigh(q - np.diag(res.u.numpy()))
    assert eigenvalues[0] < 0
    optima = _child_optima(q, c, groups, counts).T.reshape(-1)                    # value-major
    columns = torch.arange(12).repeat(2).unsqueeze(1)
    values = torch.tensor([0, 1]).repeat_interleave(12).unsqueeze(1)
    for push in (1.0, 10.0, 100.0):
        points = res.z.unsqueeze(1) + push * torch.from_numpy(vectors[:, :1]).expand(12, 24)
        bounds = certified_points(qt, ct, gt, counts, res.u, res.chol, points, columns, values).numpy()
        assert (bounds <= optima + 1e-9 * np.abs(optima).max()).all(), push
    points[:, 5] = torch.nan
    bounds = certified_points(qt, ct, gt, counts, res.u, res.chol, points, columns, values).numpy()
    assert bounds[5] == -np.inf and np.isfinite(bounds[6:]).all()
