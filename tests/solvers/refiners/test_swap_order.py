"""The float64 certification reuses the float32 search's column order (solvers.refiners.swap_search.init_state)."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.refiners.swap import search_sweep
from solvers.refiners.swap_search import gram_data, init_state


@pytest.mark.usefixtures("cpp_kernel")
def test_float64_search_with_the_float32_order_is_unchanged():
    p = solvers.generate(family="layer", d_in=160, d_out=40, seed=3)
    wanda = solvers.solve("wanda", p)
    rows = torch.arange(p.d_out)
    order32 = init_state(gram_data(p.gram, torch.float32, torch.device("cpu"), None), p.weight, wanda.mask, rows,
                         backend="cpp").order
    gd64 = gram_data(p.gram, torch.float64, torch.device("cpu"), None)
    for keep in (wanda.mask, solvers.solve("swap", p, warm_start=wanda, max_iters=5).mask):
        own = init_state(gd64, p.weight, keep, rows, backend="cpp")
        reused = init_state(gd64, p.weight, keep, rows, backend="cpp", order=order32)
        a, b = search_sweep(gd64, own, 1 << 26), search_sweep(gd64, reused, 1 << 26)
        assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3]))


@pytest.mark.usefixtures("cpp_kernel")
def test_a_scrambled_order_still_gives_the_exact_minimum():
    """Where rounding makes the given order disagree with s, the bound must stay valid (slopes lowered)."""
    p = solvers.generate(family="layer", d_in=160, d_out=24, seed=4)
    keep = solvers.solve("wanda", p).mask
    gd = gram_data(p.gram, torch.float64, torch.device("cpu"), None)
    rows = torch.arange(p.d_out)
    g = torch.Generator().manual_seed(0)
    scrambled = torch.stack([torch.randperm(p.d_in, generator=g) for _ in range(p.d_out)])
    exact = search_sweep(gd, init_state(gd, p.weight, keep, rows, backend="cpp"), 1 << 26, exhaustive=True)[0]
    got = search_sweep(gd, init_state(gd, p.weight, keep, rows, backend="cpp", order=scrambled), 1 << 26)[0]
    assert torch.equal(got, exact)
