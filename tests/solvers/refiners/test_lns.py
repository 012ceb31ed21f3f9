"""``lns`` (tabu search over swap chains): feasible, never worse than its start, never below the
optimum, deterministic, optimal on small rows where 1-swap is not; its C++ and torch paths run
the same search."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers import generate
from solvers.refiners.lns import TENURE_CYCLE, draw_tenures, resolve_backend
from solvers.refiners.tabu_search import group_blocks, loss_gradient
from tests.solvers.conftest import SMALL_CASES

CASES = SMALL_CASES


def _tol(values: torch.Tensor) -> torch.Tensor:
    return 1e-9 * values.abs() + 1e-12


@pytest.fixture(scope="module", params=sorted(CASES))
def solved(request):
    problem = CASES[request.param]()
    optimum = solvers.solve("bruteforce", problem, workers=1)
    start = solvers.solve("wanda+swap", problem)
    refined = solvers.solve("lns", problem, start, seed=0)
    return problem, optimum, start, refined


def test_feasible_never_worse_never_below_optimum(solved):
    problem, optimum, start, refined = solved
    assert refined.verified and bool(problem.pattern.is_feasible(refined.mask).all())
    assert bool((refined.row_objectives <= start.row_objectives + _tol(start.row_objectives)).all())
    assert bool((refined.row_objectives >= optimum.row_objectives - _tol(optimum.row_objectives)).all())
    assert refined.objective <= start.objective
    assert refined.trace[0][1] == pytest.approx(start.objective, rel=1e-12)


def test_deterministic_for_a_seed(solved):
    problem, _, start, refined = solved
    again = solvers.solve("lns", problem, start, seed=0)
    assert torch.equal(again.mask, refined.mask)


@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_reaches_the_optimum_where_one_swap_stops_above_it(backend):
    """Per-row tiny rows: 1-swap misses the optimum on some rows, lns finds it on every one."""
    missed = 0
    for seed in (0, 1):
        problem = generate(family="tiny", d_in=12, d_out=25, pattern="per-row", seed=seed, dead_fraction=0.15)
        optimum = solvers.solve("bruteforce", problem, workers=1).row_objectives
        start = solvers.solve("wanda+swap", problem)
        refined = solvers.solve("lns", problem, start, seed=0, backend=backend)
        missed += int((start.row_objectives > optimum + _tol(optimum)).sum())
        assert torch.allclose(refined.row_objectives, optimum, rtol=1e-9, atol=1e-12)
    assert missed >= 2  # the case is only meaningful where 1-swap is not optimal


def test_zero_steps_returns_the_start():
    problem = generate(family="tiny", d_in=16, d_out=6, seed=2)
    start = solvers.solve("wanda", problem)
    refined = solvers.solve("lns", problem, start, steps=0)
    assert torch.equal(refined.mask, start.mask)


def test_block_and_gradient_kernels_match_dense_algebra():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    gram, w = x.T @ x, torch.randn(3, 8, generator=gen, dtype=torch.float64)
    z = torch.rand(3, 8, generator=gen) < 0.5
    for group in (4, 8):
        blocks = group_blocks(w, gram, group)
        for i in range(3):
            q = torch.diag(w[i]) @ gram @ torch.diag(w[i])
            for b in range(8 // group):
                s = slice(b * group, (b + 1) * group)
                assert torch.allclose(blocks[i, b], q[s, s], rtol=1e-12, atol=1e-12)
            assert torch.allclose(loss_gradient(w, gram, z)[i], q @ z[i].double(), rtol=1e-12, atol=1e-12)


def test_refuses_missing_warm_start_and_bad_settings():
    problem = generate(family="tiny", d_in=12, d_out=2, seed=0)
    for bad in ({"tenure": 0}, {"phases": 0}, {"patience": 0}, {"steps": -1}, {"backend": "fortran"}):
        with pytest.raises(ValueError):
            solvers.solve("lns", problem, "wanda", **bad)
    with pytest.raises(ValueError):
        solvers.registry.spec("lns").function(problem, None, None, 0)


# The C++ kernel and the torch path: the same search (same moves, ties and update expressions).
PATH_CASES = {
    **{name: build for name, build in CASES.items()},
    "layer-per-row-wide": lambda: generate(family="layer", d_in=160, d_out=12, seed=4, sparsity=0.5),
    "small-2:4": lambda: generate(family="small", d_in=64, d_out=16, pattern="2:4", seed=5),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_cpp_and_torch_paths_run_the_same_search(case, cpp_kernel):
    problem = PATH_CASES[case]()
    start = solvers.solve("wanda+swap", problem)
    cpp = solvers.solve("lns", problem, start, seed=3, backend="cpp")
    torch_path = solvers.solve("lns", problem, start, seed=3, backend="torch", device="cpu")
    assert cpp.settings["backend"] == "cpp" and torch_path.settings["backend"] == "torch"
    assert torch.allclose(cpp.row_objectives, torch_path.row_objectives, rtol=1e-9, atol=1e-12)
    assert cpp.objective <= start.objective


def test_wide_rows_improve_beyond_one_swap(cpp_kernel):
    """The candidate (narrow) step on rows wider than 2·candidates still finds improvements."""
    problem = PATH_CASES["layer-per-row-wide"]()
    start = solvers.solve("wanda+swap", problem)
    refined = solvers.solve("lns", problem, start, seed=0)
    assert refined.settings["backend"] == "cpp"
    assert refined.objective < start.objective * (1 - 1e-6)
    assert refined.extra["improved_rows"] > 0


def test_cpp_result_does_not_depend_on_threads(cpp_kernel):
    problem = generate(family="small", d_in=96, d_out=40, seed=6, sparsity=0.5)
    start = solvers.solve("wanda+swap", problem)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = solvers.solve("lns", problem, start, seed=1, backend="cpp")
        torch.set_num_threads(2)
        two = solvers.solve("lns", problem, start, seed=1, backend="cpp")
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one.mask, two.mask)


@pytest.mark.parametrize("backend", ["cpp", "torch"])
def test_time_limit_stops_the_search_with_a_valid_result(backend, request):
    if backend == "cpp":
        request.getfixturevalue("cpp_kernel")
    problem = generate(family="layer", d_in=192, d_out=64, seed=7, sparsity=0.5)
    start = solvers.solve("wanda+swap", problem)
    refined = solvers.solve("lns", problem, start, seed=0, backend=backend, device="cpu", time_limit=1e-4,
                            patience=None, steps=100_000)
    assert refined.status == "time_limit"
    assert refined.verified and refined.objective <= start.objective


def test_tenures_follow_the_cycle_and_the_seed():
    gen = torch.Generator().manual_seed(0)
    tenures = draw_tenures(50, 4, 7, gen)
    assert tenures.shape == (50, 7)
    for p in range(7):
        t = TENURE_CYCLE[p % len(TENURE_CYCLE)] * 4
        assert bool((tenures[:, p] >= t).all() and (tenures[:, p] <= 2 * t).all())
    assert torch.equal(tenures, draw_tenures(50, 4, 7, torch.Generator().manual_seed(0)))


def test_backend_choice():
    with pytest.raises(ValueError, match="CPU"):
        resolve_backend("cpp", torch.device("cuda"))
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend("torch", torch.device("cpu")) == "torch"


def test_torch_pair_table_is_bounded_by_the_memory_budget():
    """The torch search's all-pairs table is d_in·g floats per row: rows are chunked to the budget, and a
    single row's table over the budget (the per-row d_in × d_in table of candidates=None) is refused."""
    problem = generate(family="layer", d_in=256, d_out=6, seed=0)        # one row's table: 4·8·256² B = 2 MiB
    start = solvers.solve("wanda", problem)
    with pytest.raises(ValueError, match="pair table"):
        solvers.solve("lns", problem, warm_start=start, backend="torch", candidates=None, memory_budget_mb=1.0,
                      steps=5, phases=1)
    small = solvers.solve("lns", problem, warm_start=start, backend="torch", candidates=None, memory_budget_mb=4.0,
                          steps=20, phases=1, seed=1)
    wide = solvers.solve("lns", problem, warm_start=start, backend="torch", candidates=None, memory_budget_mb=512.0,
                         steps=20, phases=1, seed=1)
    assert small.settings["chunk_rows"] == 2 and wide.settings["chunk_rows"] == 64
    assert small.objective <= start.objective and wide.objective <= start.objective
