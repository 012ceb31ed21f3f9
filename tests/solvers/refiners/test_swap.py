"""SparseSwaps 1-swap refiner (solvers.refiners.swap): exact best pair on both backends, feasibility, certificates, limits."""

from __future__ import annotations

import itertools

import pytest
import torch

import solvers
from solvers.objective import InfeasibleMaskError, row_objectives
from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem
from solvers.refiners.swap import best_swap_deltas, resolve_backend
from solvers.refiners.swap_search import gram_data, init_state


def _need(backend: str, request) -> None:
    """Skip a ``cpp`` case, with the reason, where the kernel cannot be built (``cpp_kernel`` fixture)."""
    if backend == "cpp":
        request.getfixturevalue("cpp_kernel")


def brute_deltas(problem: MaskProblem, keep: torch.Tensor) -> torch.Tensor:
    """Independent reference: each row's min over all feasible swaps of the recomputed fp64 loss change."""
    base = row_objectives(problem, keep)
    out = torch.full((problem.d_out,), float("inf"), dtype=torch.float64)
    m = problem.pattern.m if isinstance(problem.pattern, NM) else None
    for i in range(problem.d_out):
        w = problem.weight[i].double()
        g = problem.gram.double()
        for u in torch.nonzero(~keep[i]).flatten().tolist():
            for p in torch.nonzero(keep[i]).flatten().tolist():
                if m is not None and u // m != p // m:
                    continue
                k = keep[i].clone()
                k[u], k[p] = True, False
                r = torch.where(k, 0.0, w)
                out[i] = min(out[i], float(r @ g @ r) - float(base[i]))
    return out


def warm(problem: MaskProblem) -> torch.Tensor:
    return solvers.solve("wanda", problem).mask


@pytest.mark.parametrize(("backend", "pattern"), [("torch", "per-row"), ("cpp", "per-row"), ("torch", "2:4")])
def test_bounded_search_equals_exhaustive_and_brute_force(backend, pattern, request):
    _need(backend, request)
    p = solvers.generate(family="small", d_in=24, d_out=8, seed=5, pattern=pattern)
    keep = warm(p)
    m = p.pattern.m if isinstance(p.pattern, NM) else None
    gd = gram_data(p.gram, torch.float64, torch.device("cpu"), m)
    st = init_state(gd, p.weight, keep, torch.arange(p.d_out), backend=backend)
    from solvers.refiners.swap import search_sweep

    bounded, u, q, _ = search_sweep(gd, st, 1 << 26)
    full, _, _, _ = search_sweep(gd, st, 1 << 26, exhaustive=True)
    ref = brute_deltas(p, keep)
    scale = row_objectives(p, keep)
    assert torch.allclose(bounded.double(), ref, rtol=0, atol=1e-9 * float(scale.max()))
    assert torch.allclose(full.double(), ref, rtol=0, atol=1e-9 * float(scale.max()))
    # the returned pair attains the minimum
    for i in range(p.d_out):
        k2 = keep.clone()
        k2[i, int(u[i])], k2[i, int(q[i])] = True, False
        assert abs(float(row_objectives(p, k2)[i] - scale[i]) - float(ref[i])) <= 1e-9 * float(scale.max())


def test_bounds_exact_on_layer_rows():
    """Bounded search (both backends) = exhaustive search on a layer-like instance with outlier channels."""
    p = solvers.generate(family="layer", d_in=192, d_out=24, seed=2)
    keep = solvers.solve("swap", p, max_iters=5, certify=False).mask  # a mid-run state
    gd = gram_data(p.gram, torch.float64, torch.device("cpu"), None)
    from solvers.refiners.swap import search_sweep

    ref = None
    for backend in ("torch", "cpp"):
        if backend == "cpp" and resolve_backend("auto", torch.device("cpu"), None) != "cpp":
            continue
        st = init_state(gd, p.weight, keep, torch.arange(p.d_out), backend=backend)
        full = search_sweep(gd, st, 1 << 26, exhaustive=True)[0]
        bounded = search_sweep(gd, st, 1 << 26)[0]
        assert torch.allclose(bounded, full, rtol=1e-12, atol=0)
        ref = full if ref is None else ref
        assert torch.allclose(full, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("backend", "pattern"),
                         [("torch", "per-row"), ("cpp", "per-row"), ("torch", "2:4"), ("torch", "4:8")])
def test_feasible_never_worse_and_one_swap_optimal(backend, pattern, request):
    _need(backend, request)
    p = solvers.generate(family="small", d_in=32, d_out=10, seed=7, pattern=pattern)
    r = solvers.solve("swap", p, backend=backend)
    assert r.status == "feasible" and r.verified
    assert bool(p.pattern.is_feasible(r.mask).all())
    warm_rows = row_objectives(p, warm(p))
    assert bool((r.row_objectives <= warm_rows * (1 + 1e-12)).all())
    assert r.objective <= r.warm_start_objective
    # independent brute force: no improving pair at convergence (tol 1e-6 of the row loss)
    ref = brute_deltas(p, r.mask)
    assert bool((ref >= -1e-6 * r.row_objectives - 1e-12).all())
    cert = best_swap_deltas(p, r.mask)
    assert torch.allclose(cert, ref, rtol=0, atol=1e-9 * float(r.row_objectives.max()))
    # trace: one (seconds, objective) per iteration plus the warm start, non-increasing objective
    assert len(r.trace) == r.iterations + 1 == len(r.extra["trace_rows_improving"]) + 1
    objs = [o for _, o in r.trace]
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(objs))


def _tiny_optimum(p: MaskProblem) -> float:
    d, k = p.d_in, p.pruned_per_row
    best = 0.0
    for i in range(p.d_out):
        w, g = p.weight[i].double(), p.gram.double()
        vals = []
        for pr in itertools.combinations(range(d), k):
            r = torch.zeros(d, dtype=torch.float64)
            r[list(pr)] = w[list(pr)]
            vals.append(float(r @ g @ r))
        best += min(vals)
    return best


def test_tiny_result_at_least_brute_force_optimum():
    p = solvers.generate(family="tiny", d_in=12, d_out=3, seed=1)
    r = solvers.solve("swap", p)
    opt = _tiny_optimum(p)
    assert r.objective >= opt * (1 - 1e-12)


def test_hand_made_case_where_one_swap_reaches_optimum():
    # diagonal G: the loss is separable, so the optimum prunes the k smallest w_j² G_jj and any
    # mask one swap away from it is fixed by one improving swap.
    g = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype=torch.float64))
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    p = MaskProblem(w, g, PerRow(3))
    start = torch.tensor([[False, False, True, False, True, True]])  # prunes columns 0, 1, 3
    r = solvers.solve("swap", p, warm_start=start)
    assert r.objective == pytest.approx(_tiny_optimum(p), rel=1e-12) == pytest.approx(6.0)
    assert r.mask.tolist() == [[False, False, False, True, True, True]]
    assert r.extra["search_iterations"] == 2  # one swap, then a sweep that finds none


def test_deterministic():
    p = solvers.generate(family="small", d_in=48, d_out=12, seed=11)
    a = solvers.solve("swap", p, seed=0, backend="torch")
    b = solvers.solve("swap", p, seed=0, backend="torch")
    assert torch.equal(a.mask, b.mask)


def test_infeasible_warm_start_refused():
    p = solvers.generate(family="small", d_in=32, d_out=4, seed=0)
    bad = torch.ones(4, 32, dtype=torch.bool)
    with pytest.raises(InfeasibleMaskError, match="warm start refused"):
        solvers.solve("swap", p, warm_start=bad)


def test_limits_and_chains():
    p = solvers.generate(family="small", d_in=64, d_out=16, seed=4)
    r = solvers.solve("swap", p, max_iters=1)
    assert r.status == "iteration_limit" and r.iterations == 1
    assert r.objective <= r.warm_start_objective
    chained = solvers.solve("magnitude+swap", p)
    assert chained.warm_start == "magnitude" and chained.status == "feasible"
    with pytest.raises(ValueError, match="backend"):
        solvers.solve("swap", p, backend="fortran")


def test_cli_solve_swap(cli, tmp_path):
    inst = tmp_path / "i.safetensors"
    cli("generate", "--family", "small", "--d-in", "32", "--d-out", "4", "--seed", "0", "-o", inst, check=True)
    out = cli("solve", inst, "--solver", "wanda+swap", "--json", check=True)
    assert '"status": "feasible"' in out.stdout


def test_swap_takes_a_transposed_view_as_weight_and_leaves_it_unchanged():
    """The state reads ``W`` without copying it when every row is searched; a transposed view (GPT-2's
    Conv1D layout) is made row-major for the kernel, and ``W`` is never written."""
    from solvers.synthetic import generate

    base = generate(family="layer", d_in=160, d_out=6, seed=3)
    view = base.weight.T.contiguous().T
    assert not view.is_contiguous()
    strided = MaskProblem(view, base.gram, base.pattern)
    before = view.clone()
    a = solvers.solve("wanda+swap", strided)
    b = solvers.solve("wanda+swap", base)
    assert torch.equal(view, before) and torch.equal(base.weight, before)
    assert torch.equal(a.mask, b.mask)
