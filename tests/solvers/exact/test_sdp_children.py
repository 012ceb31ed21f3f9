"""Children's bounds from the parent's multipliers (solvers.exact.sdp_children) and the fixing they drive in sdpbb."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from solvers import generate
from solvers.exact import sdpbb
from solvers.exact.rows import RowQP, row_problems
from solvers.exact.sdp_bound import EPS, GroupBasis, initial_multipliers, sdp_bound
from solvers.exact.sdp_children import certified_children, child_gains, pair_gains
from solvers.exact.sdpbb import Search


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


def _pair_optima(q: np.ndarray, c: np.ndarray, groups, counts, column: int, value: int) -> np.ndarray:
    """[2, m]: min zᵀqz + 2cᵀz with z_column = value and z_i = w, by enumeration (inf if none)."""
    out = np.full((2, q.shape[0]), np.inf)
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(q.shape[0])
        for p in pick:
            z[list(p)] = 1.0
        if z[column] != value:
            continue
        rows = np.arange(q.shape[0])
        out[z.astype(int), rows] = np.minimum(out[z.astype(int), rows], z @ q @ z + 2 * c @ z)
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
            closed_form = res.h + pair_gains(kmat, res.z, column, value)[:, others]        # [2, 11]
            cols = torch.stack([torch.full((22,), column), others.repeat(2)], 1)
            vals = torch.stack([torch.full((22,), value), torch.tensor([0, 1]).repeat_interleave(11)], 1)
            certified = certified_children(qt, ct, gt, counts, res.u, res.z, res.chol, kmat, cols, vals)
            certified = certified.reshape(2, 11).numpy()
            optima = _pair_optima(q, c, groups, counts, column, value)[:, others.numpy()]
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


def _row(d: int, seed: int, pattern: str = "per-row") -> RowQP:
    row = row_problems(generate(family="small", d_in=d, d_out=1, seed=seed, pattern=pattern), None)[0]
    return RowQP(row.row, row.q, row.scale, row.groups, row.counts, None)


@pytest.mark.parametrize("pattern", ["per-row", "2:4"])
def test_fixing_closes_nodes_without_changing_the_optimum(pattern, monkeypatch):
    """The same rows without fixing, with one-column fixing, and with the pairs of the branching
    column too: each takes fewer nodes in all than the one before and proves the same objective
    (here 264 / 146 / 91 nodes per row and 133 / 63 / 52 for 2:4 on three d = 48 rows)."""
    runs = {}
    for mode in ("none", "single", "pair"):
        with monkeypatch.context() as patch:
            if mode == "none":
                patch.setattr(sdpbb, "child_gains", _no_gain)
            patch.setattr(sdpbb, "PAIR_FIXING", mode == "pair")
            runs[mode] = [Search(_row(48, seed, pattern), 1e-6, None, None).run() for seed in range(3)]
    for outcomes in zip(*runs.values()):
        assert all(o.proved for o in outcomes)
        assert all(o.objective == pytest.approx(outcomes[0].objective, rel=2e-6) for o in outcomes)
    nodes = {mode: sum(o.nodes for o in outcomes) for mode, outcomes in runs.items()}
    assert nodes["pair"] < nodes["single"] < nodes["none"], nodes


def _no_gain(basis, z, chol):
    """``child_gains`` with every gain −inf: no child is screened, so nothing is fixed."""
    kmat, gain = child_gains(basis, z, chol)
    return kmat, torch.full_like(gain, -torch.inf)
