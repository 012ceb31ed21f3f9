"""On a machine with CUDA: the torch paths of swap, lns and the bound give valid results that agree
with the CPU's (skipped without CUDA; the lent-GPU check runs them, ``bench/studies/device_check.sh``).

Agreement is judged as across two CPUs: objectives are float64 values of verified masks, so equal
masks give equal objectives to rounding; bounds are certified on each device and may differ by the
rounding of their Newton paths, but never exceed the proven optimum."""

from __future__ import annotations

import pytest
import torch

import solvers
from tests.solvers.conftest import SMALL_CASES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("case", sorted(SMALL_CASES))
def test_swap_lns_and_bound_on_cuda_match_the_cpu(case):
    problem = SMALL_CASES[case]()
    optimum = solvers.solve("bruteforce", problem)
    wanda = solvers.solve("wanda", problem)
    for device in ("cpu", "cuda"):
        swap = solvers.solve("swap", problem, warm_start=wanda, device=device, backend="torch")
        lns = solvers.solve("lns", problem, swap, seed=0, device=device)
        bound = solvers.solve("bound", problem, swap, device=device, workers=1)
        assert swap.objective <= wanda.objective * (1 + 1e-12)
        assert optimum.objective * (1 - 1e-9) - 1e-12 <= lns.objective <= swap.objective * (1 + 1e-12)
        assert torch.all(bound.row_lower_bounds <= optimum.row_objectives * (1 + 1e-9) + 1e-12)
        if device == "cpu":
            cpu = (swap, lns, bound)
    assert swap.objective == pytest.approx(cpu[0].objective, rel=1e-9, abs=1e-12)
    assert lns.objective == pytest.approx(cpu[1].objective, rel=1e-9, abs=1e-12)
    assert torch.allclose(bound.row_lower_bounds, cpu[2].row_lower_bounds, rtol=1e-6, atol=1e-9)


def test_swap_on_a_layer_shape_is_verified_and_matches_the_cpu():
    problem = solvers.generate(family="layer", d_in=256, d_out=64, seed=3, sparsity=0.5)
    wanda = solvers.solve("wanda", problem)
    cpu = solvers.solve("swap", problem, warm_start=wanda, device="cpu", backend="torch")
    cuda = solvers.solve("swap", problem, warm_start=wanda, device="cuda")
    assert cuda.extra["device"].startswith("cuda")
    assert cuda.objective <= wanda.objective
    assert cuda.objective == pytest.approx(cpu.objective, rel=1e-6)


def test_cpp_backend_without_a_device_runs_on_the_cpu():
    problem = solvers.generate(family="layer", d_in=160, d_out=8, seed=1, sparsity=0.5)
    res = solvers.solve("swap", problem, warm_start="wanda", backend="cpp")
    assert res.extra["device"] == "cpu"


def test_exact_row_processes_start_cleanly_beside_a_cuda_context(recwarn):
    torch.zeros(1, device="cuda")  # this process now holds a CUDA context
    problem = SMALL_CASES["tiny-per-row-s0"]()
    one = solvers.solve("bruteforce", problem, workers=1)
    two = solvers.solve("bruteforce", problem, workers=2)
    assert torch.allclose(one.row_objectives, two.row_objectives, rtol=1e-12)
    assert not [w for w in recwarn if "fork" in str(w.message)]
