"""The doubly-nonnegative (Shor + RLT pairs) bound (solvers.exact.dnn_bound) and the ``bound`` solver's
``relaxation="dnn"``: valid below brute-force optima, never below Shor through the solver, tighter
than Shor where Shor leaves a gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from solvers.exact.dnn_bound import PairSet, dnn_bound, lagrangian
from solvers.exact.sdp_bound import GroupBasis, initial_multipliers, sdp_bound
from tests.solvers.conftest import SMALL_CASES, feasible_points


def _random_pairs(m: int, count: int, seed: int, scale: float) -> PairSet:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, m - 1, count)
    j = np.minimum(i + 1 + rng.integers(0, m, count), m - 1)
    j = np.where(j > i, j, i + 1)
    return PairSet(torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(rng.integers(0, 4, count)),
                   torch.from_numpy(rng.uniform(0.0, scale, count)))


def _tensors(q, c, groups):
    return torch.from_numpy(q), torch.from_numpy(c), [torch.from_numpy(g) for g in groups]


@pytest.mark.parametrize("nm", [False, True])
def test_lagrangian_is_a_minorant_on_every_feasible_point(nm, random_node):
    """f(z) − Σ θ s(z) = z'q'z + 2c'z + κ ≤ f(z) for every binary feasible z (the pair slacks are ≥ 0 there)."""
    q, c, groups, counts = random_node(5, 8, nm)
    qt, ct, _ = _tensors(q, c, groups)
    pairs = _random_pairs(8, 40, 1, 2.0)
    q2, c2, kappa, _ = lagrangian(qt, ct, pairs)
    q2, c2 = q2.numpy(), c2.numpy()
    coef = pairs.coefficients().numpy()
    i, j, th = pairs.i.numpy(), pairs.j.numpy(), pairs.theta.numpy()
    for z in feasible_points(groups, counts, 8):
        f = z @ q @ z + 2 * c @ z
        slack = coef[:, 0] * z[i] * z[j] + coef[:, 1] * z[i] + coef[:, 2] * z[j] + coef[:, 3]
        assert (slack >= 0).all()
        lag = z @ q2 @ z + 2 * c2 @ z + kappa
        assert lag == pytest.approx(f - th @ slack, rel=1e-12, abs=1e-12)
        assert lag <= f + 1e-12 * max(1.0, abs(f))


@pytest.mark.parametrize("nm", [False, True])
def test_any_multipliers_give_a_bound_below_the_optimum(nm, random_node, brute_node):
    """The certificate needs no convergence: arbitrary θ ≥ 0, a Shor ascent on the resulting quadratic."""
    for seed in range(6):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt = _tensors(q, c, groups)
        pairs = _random_pairs(12, 60, seed, 3.0)
        q2, c2, kappa, margin = lagrangian(qt, ct, pairs)
        u = initial_multipliers(q2, GroupBasis(12, gt))
        out = sdp_bound(q2, c2, gt, counts, u, 1.0, max_iterations=15)
        opt = brute_node(q, c, groups, counts)
        assert out.bound + kappa - margin <= opt + 1e-9 * max(1.0, abs(opt)), (seed, out.bound + kappa, opt)


@pytest.mark.parametrize("nm", [False, True])
def test_dnn_bound_is_valid_and_closes_shor_gaps(nm, random_node, brute_node):
    """Below the optimum on every node; where the converged Shor bound leaves a gap, the DNN bound with
    every pair inequality available closes at least half of it (measured: all of it on these nodes)."""
    gaps = 0
    for seed in range(8):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt = _tensors(q, c, groups)
        u0 = initial_multipliers(qt, GroupBasis(12, gt))
        shor = sdp_bound(qt, ct, gt, counts, u0, 1.0)
        dnn = dnn_bound(qt, ct, gt, counts, u0, 1.0, max_pairs=4 * 66, max_iterations=400)
        opt = brute_node(q, c, groups, counts)
        scale = max(1.0, abs(opt))
        assert dnn.bound <= opt + 1e-9 * scale, (seed, dnn.bound, opt)
        if opt - shor.bound > 1e-3 * scale:
            gaps += 1
            assert dnn.bound >= shor.bound + 0.5 * (opt - shor.bound), (seed, shor.bound, dnn.bound, opt)
    assert gaps >= 3  # the check above is not vacuous


def test_dnn_bound_refuses_an_infeasible_start(random_node):
    q, c, groups, counts = random_node(0, 12, False)
    qt, ct, gt = _tensors(q, c, groups)
    with pytest.raises(ValueError):
        dnn_bound(qt, ct, gt, counts, torch.full((12,), 1e6, dtype=torch.float64), 1.0)


@pytest.mark.parametrize("name", sorted(SMALL_CASES))
def test_solver_dnn_is_below_brute_force_and_not_below_shor(name):
    problem = SMALL_CASES[name]()
    optimum = solvers.solve("bruteforce", problem, workers=1)
    shor = solvers.solve("bound", problem, "wanda", workers=1)
    dnn = solvers.solve("bound", problem, "wanda", workers=1, relaxation="dnn", dnn_method="barrier",
                        dnn_steps=60)  # this file tests the barrier method; the splitting one: test_dnn_admm.py
    tol = 1e-9 * optimum.row_objectives + 1e-12
    assert bool((dnn.row_lower_bounds <= optimum.row_objectives + tol).all())
    assert bool((dnn.row_lower_bounds >= shor.row_lower_bounds - 1e-9 * shor.row_lower_bounds.abs() - 1e-12).all())
    assert dnn.lower_bound >= shor.lower_bound * (1 - 1e-12)


def test_solver_dnn_below_sdpbb_optimum_on_larger_rows():
    for pattern in ("per-row", "2:4"):
        problem = solvers.generate(family="small", d_in=24, d_out=3, pattern=pattern, seed=2)
        optimum = solvers.solve("sdpbb", problem, workers=1)
        assert optimum.status == "optimal"
        result = solvers.solve("bound", problem, workers=1, relaxation="dnn", dnn_steps=100)
        assert bool((result.row_lower_bounds <= optimum.row_objectives * (1 + 1e-9) + 1e-12).all())
        assert result.lower_bound > 0


def test_dnn_settings_are_checked():
    problem = solvers.generate(family="tiny", d_in=12, d_out=2, seed=0)
    for bad in ({"relaxation": "rlt"}, {"dnn_steps": -1}, {"dnn_steps": 1.5}, {"dnn_pairs": 0}, {"dnn_pairs": True}):
        with pytest.raises(ValueError):
            solvers.solve("bound", problem, "wanda", workers=1, **bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("nm", [False, True])
def test_dnn_bound_on_cuda_is_valid(nm, random_node, brute_node):
    for seed in range(4):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt = (x.cuda() if isinstance(x, torch.Tensor) else [g.cuda() for g in x] for x in _tensors(q, c, groups))
        u0 = initial_multipliers(qt, GroupBasis(12, gt))
        dnn = dnn_bound(qt, ct, gt, counts, u0, 1.0, max_pairs=4 * 66, max_iterations=400)
        opt = brute_node(q, c, groups, counts)
        assert dnn.bound <= opt + 1e-9 * max(1.0, abs(opt))
