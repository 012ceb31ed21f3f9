"""The splitting DNN bound (solvers.exact.dnn_admm): the lifting's maps, the multiplier split, the
box-and-groups projection, and certified bounds — valid for any multipliers, below brute-force and
``sdpbb`` optima, never below Shor through the solver, and closing most of Shor's gap on small rows."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import solvers
from solvers.exact.dnn_admm import Lifting, box_minimiser, certify, dnn_admm_bound, lifted_multipliers, project_box_groups
from solvers.exact.sdp_bound import GroupBasis, initial_multipliers, sdp_bound
from tests.solvers.conftest import SMALL_CASES, feasible_points


def _tensors(q, c, groups):
    return torch.from_numpy(q), torch.from_numpy(c), [torch.from_numpy(g) for g in groups]


def _t_matrix(m: int) -> torch.Tensor:
    eye = torch.eye(m + 1, dtype=torch.float64)
    return torch.cat([eye[:1], eye[1:], eye[:1] - eye[1:]])


@pytest.mark.parametrize("nm", [False, True])
def test_lifting_maps_and_orthonormal_basis(nm, random_node):
    q, c, groups, counts = random_node(0, 12, nm)
    _, _, gt = _tensors(q, c, groups)
    lifting = Lifting(12, gt, counts)
    t = _t_matrix(12)
    gen = torch.Generator().manual_seed(0)
    big = torch.randn(25, 25, generator=gen, dtype=torch.float64)
    small = torch.randn(13, 13, generator=gen, dtype=torch.float64)
    assert torch.allclose(lifting.pull(big), t.T @ big @ t, atol=1e-12)
    assert torch.allclose(lifting.lift(small), t @ small @ t.T, atol=1e-12)
    basis = t @ lifting.w
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1], dtype=torch.float64), atol=1e-10)
    # every feasible binary y = (1, z) lies in range(W): the facial reduction keeps the feasible set
    for z in itertools.islice(feasible_points(groups, counts, 12), 20):
        y = torch.from_numpy(np.concatenate([[1.0], z]))
        coef = torch.linalg.lstsq(lifting.w, y.unsqueeze(1)).solution
        assert torch.allclose(lifting.w @ coef, y.unsqueeze(1), atol=1e-9)


def test_multiplier_split_is_an_identity_on_binary_points():
    """⟨Θ̄, wwᵀ⟩ = Σ θ s(z, zzᵀ) + zᵀ diag(dq) z + 2 dcᵀ z + dk for w = (1, z, 1 − z), any binary z."""
    m = 9
    gen = torch.Generator().manual_seed(3)
    theta = torch.randn(2 * m + 1, 2 * m + 1, generator=gen, dtype=torch.float64)
    pairs, dq, dc, dk = lifted_multipliers(theta, m)
    assert bool((pairs.theta > 0).all())
    sym = 0.5 * (theta + theta.T)
    clipped = sym.clamp(min=0.0)
    idx = torch.arange(1, m + 1)
    clipped[idx, idx + m] = sym[idx, idx + m]
    clipped[idx + m, idx] = sym[idx + m, idx]
    clipped[0, 0] = 0.0
    coef = pairs.coefficients()
    for bits in itertools.islice(itertools.product([0.0, 1.0], repeat=m), 0, 512, 7):
        z = torch.tensor(bits, dtype=torch.float64)
        w = torch.cat([torch.ones(1, dtype=torch.float64), z, 1 - z])
        slack = coef[:, 0] * z[pairs.i] * z[pairs.j] + coef[:, 1] * z[pairs.i] + coef[:, 2] * z[pairs.j] + coef[:, 3]
        right = (pairs.theta * slack).sum() + (dq * z * z).sum() + 2 * dc @ z + dk
        assert float(w @ clipped @ w) == pytest.approx(float(right), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("nm", [False, True])
def test_projection_onto_box_and_group_sums(nm, random_node):
    """Feasible, and the projection: ⟨x − p, y − p⟩ ≤ 0 for every feasible y (here: every binary one)."""
    _, _, groups, counts = random_node(1, 12, nm)
    owner = torch.empty(12, dtype=torch.long)
    for n, g in enumerate(groups):
        owner[torch.from_numpy(g)] = n
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = 2.0 * torch.randn(12, generator=gen, dtype=torch.float64)
        p = project_box_groups(x, owner, torch.tensor(counts, dtype=torch.float64))
        assert bool(((p >= 0) & (p <= 1)).all())
        for g, k in zip(groups, counts):
            assert float(p[torch.from_numpy(g)].sum()) == pytest.approx(k, abs=1e-9)
        for z in feasible_points(groups, counts, 12):
            assert float((x - p) @ (torch.from_numpy(z) - p)) <= 1e-9


@pytest.mark.parametrize("nm", [False, True])
def test_any_multipliers_give_a_bound_below_the_optimum(nm, random_node, brute_node):
    """The certificate needs no convergence: random Θ of both signs on every entry."""
    for seed in range(6):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt = _tensors(q, c, groups)
        gen = torch.Generator().manual_seed(seed)
        theta = (0.3 if seed % 2 else 3.0) * torch.randn(25, 25, generator=gen, dtype=torch.float64)
        bound, _, _ = certify(qt, ct, gt, counts, theta, shor_steps=5)
        opt = brute_node(q, c, groups, counts)
        assert bound <= opt + 1e-9 * max(1.0, abs(opt)), (seed, bound, opt)


def test_box_minimiser_certificate_is_below_every_feasible_value(random_node):
    """FISTA over box and group sums on a convex quadratic: its point is feasible and not worse than the start."""
    q, c, groups, counts = random_node(2, 12, True)
    qt, ct, gt = _tensors(q, c, groups)
    owner = torch.empty(12, dtype=torch.long)
    for n, g in enumerate(gt):
        owner[g] = n
    count_t = torch.tensor(counts, dtype=torch.float64)
    start = project_box_groups(torch.rand(12, dtype=torch.float64), owner, count_t)
    z = box_minimiser(qt, 2 * ct, owner, count_t, start, 300)
    value = lambda v: float(v @ qt @ v + 2 * ct @ v)  # noqa: E731
    assert value(z) <= value(start) + 1e-12
    assert min(value(torch.from_numpy(b)) for b in feasible_points(groups, counts, 12)) >= value(z) - 1e-9


@pytest.mark.parametrize("nm", [False, True])
def test_admm_bound_is_valid_and_closes_shor_gaps(nm, random_node, brute_node):
    """From the converged Shor point: below the optimum on every node; where Shor leaves a gap, the
    splitting closes at least CLOSED_SHARE of it on average (measured values in the assertion's comment)."""
    closed = []
    for seed in range(8):
        q, c, groups, counts = random_node(seed, 12, nm)
        qt, ct, gt = _tensors(q, c, groups)
        shor = sdp_bound(qt, ct, gt, counts, initial_multipliers(qt, GroupBasis(12, gt)), 1.0)
        out = dnn_admm_bound(qt, ct, gt, counts, shor, iterations=1000, certify_every=500)
        opt = brute_node(q, c, groups, counts)
        scale = max(1.0, abs(opt))
        assert out.bound <= opt + 1e-9 * scale, (seed, out.bound, opt)
        if opt - shor.bound > 1e-3 * scale:
            closed.append((max(out.bound, shor.bound) - shor.bound) / (opt - shor.bound))
    assert len(closed) >= 3
    # measured (2026-12-07, fixed penalty): per-row 0.63 / 1.0 / 1.0 (mean 0.88), 2:4 0.94 / 1.0 / 1.0 (0.98);
    # certifying every 250 iterations instead of 500 gave the same means within 0.02 at twice the time
    assert float(np.mean(closed)) >= CLOSED_SHARE, closed


CLOSED_SHARE = 0.4


@pytest.mark.parametrize("name", sorted(SMALL_CASES))
def test_solver_admm_is_below_brute_force_and_not_below_shor(name):
    problem = SMALL_CASES[name]()
    problem = problem.crop(torch.arange(min(8, problem.d_out)), torch.arange(problem.d_in))  # 8 rows: ≈ 1 s per row
    optimum = solvers.solve("bruteforce", problem, workers=1)
    shor = solvers.solve("bound", problem, "wanda", workers=1)
    dnn = solvers.solve("bound", problem, "wanda", workers=1, relaxation="dnn", dnn_method="admm", dnn_steps=200)
    tol = 1e-9 * optimum.row_objectives + 1e-12
    assert bool((dnn.row_lower_bounds <= optimum.row_objectives + tol).all())
    assert bool((dnn.row_lower_bounds >= shor.row_lower_bounds - 1e-9 * shor.row_lower_bounds.abs() - 1e-12).all())


def test_solver_admm_below_sdpbb_optimum_and_above_shor_on_larger_rows():
    for pattern in ("per-row", "2:4"):
        problem = solvers.generate(family="small", d_in=24, d_out=3, pattern=pattern, seed=2)
        optimum = solvers.solve("sdpbb", problem, workers=1)
        assert optimum.status == "optimal"
        shor = solvers.solve("bound", problem, workers=1)
        result = solvers.solve("bound", problem, workers=1, relaxation="dnn", dnn_steps=600)
        assert bool((result.row_lower_bounds <= optimum.row_objectives * (1 + 1e-9) + 1e-12).all())
        assert result.lower_bound >= shor.lower_bound * (1 - 1e-12)


def test_dnn_method_is_checked():
    problem = solvers.generate(family="tiny", d_in=12, d_out=2, seed=0)
    with pytest.raises(ValueError):
        solvers.solve("bound", problem, "wanda", workers=1, relaxation="dnn", dnn_method="bundle")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_admm_bound_on_cuda_is_valid(random_node, brute_node):
    for nm in (False, True):
        q, c, groups, counts = random_node(2, 12, nm)
        qt, ct, gt = (x.cuda() if isinstance(x, torch.Tensor) else [g.cuda() for g in x] for x in _tensors(q, c, groups))
        shor = sdp_bound(qt, ct, gt, counts, initial_multipliers(qt, GroupBasis(12, gt)), 1.0)
        out = dnn_admm_bound(qt, ct, gt, counts, shor, iterations=500)
        opt = brute_node(q, c, groups, counts)
        assert out.bound <= opt + 1e-9 * max(1.0, abs(opt))


def test_deadline_ends_the_splitting_with_a_certificate(random_node):
    """Given far more iterations than the time allows, the splitting stops for the deadline, keeping time
    for the certification it has not timed yet, and returns a certified bound (an ignored deadline would
    run the 10⁶ iterations)."""
    import time

    q, c, groups, counts = random_node(3, 160, False)
    qt, ct, gt = _tensors(q, c, groups)
    budget = 1.5
    start = time.perf_counter()
    out = dnn_admm_bound(qt, ct, gt, counts, None, iterations=10**6, certify_every=50, deadline=start + budget)
    assert 0 < out.iterations < 10**6 and out.certified_at and math.isfinite(out.bound)
    assert time.perf_counter() - start < budget + 30.0
