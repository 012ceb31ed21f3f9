"""The fused C++ swap kernel (solvers.refiners.swap_cpp): repeatable, agrees with torch; its sweep that applies
the swaps and its column order match the torch operations they replace.

Tests that run the kernel skip with the compiler's reason where it cannot be built.
"""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.refiners.swap import search_sweep
from solvers.refiners.swap_cpp import column_order, search_and_apply_cpu
from solvers.refiners.swap_search import gram_data, init_state


@pytest.mark.usefixtures("cpp_kernel")
def test_deterministic_and_agrees_with_torch():
    p = solvers.generate(family="small", d_in=48, d_out=12, seed=11)
    a = solvers.solve("swap", p, seed=0, backend="torch")
    c = solvers.solve("swap", p, seed=0, backend="cpp")
    d = solvers.solve("swap", p, seed=0, backend="cpp")
    assert torch.equal(c.mask, d.mask)
    assert c.objective == pytest.approx(a.objective, rel=1e-9)


@pytest.mark.usefixtures("cpp_kernel")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_column_order_is_torchs_stable_argsort(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 301, generator=g, dtype=dtype)
    x[:, 1::5] = (x[:, 1::5] * 4).round() / 4  # many ties
    x[:, ::7] = 0.0
    x[:, 3::11] = -0.0  # equal to +0.0: ties by column
    x[:, 5::13] = float("inf")
    x[:, 6::17] = -1.5
    x[::3, 9::19] = float("nan")  # last, ties by column
    expected = torch.argsort(x, dim=1, stable=True).to(torch.int32)
    assert torch.equal(column_order(x), expected)
    assert column_order(torch.empty(0, 5, dtype=dtype)).shape == (0, 5)


@pytest.mark.usefixtures("cpp_kernel")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_search_and_apply_equals_a_search_then_the_torch_update(dtype):
    """The fused sweep takes the swaps a search finds, updating ``c`` as ``c + (w_p G[p] − w_u G[u])``, each
    operation rounded on its own (no fused multiply-add), and the loss by the float64 Δ."""
    p = solvers.generate(family="layer", d_in=160, d_out=50, seed=7)
    keep = solvers.solve("wanda", p).mask
    gd = gram_data(p.gram, dtype, torch.device("cpu"), None)
    fused = init_state(gd, p.weight, keep.clone(), torch.arange(p.d_out), backend="cpp")
    split = init_state(gd, p.weight, keep.clone(), torch.arange(p.d_out), backend="cpp")
    active = torch.tensor([0, 3, 4, 5, 17, 30, 31, 49])
    for _ in range(4):
        threshold = -1e-6 * fused.loss[active]
        applied = search_and_apply_cpu(fused.w, fused.keep, fused.c, gd.gram, gd.diag, gd.rho, fused.s, fused.order,
                                       gd.rel, active, threshold, fused.loss)
        delta, u, q, _ = search_sweep(gd, split, 1 << 26, rows=active, threshold=threshold)
        better = delta.to(torch.float64) < threshold
        assert torch.equal(applied, better) and bool(better.any())
        for j in torch.nonzero(better).flatten().tolist():
            row, uu, pp = int(active[j]), int(u[j]), int(q[j])
            split.c[row] += split.w[row, pp] * gd.gram[pp] - split.w[row, uu] * gd.gram[uu]
            split.keep[row, uu], split.keep[row, pp] = True, False
            split.loss[row] += float(delta[j])
        for name in ("keep", "c", "loss"):
            assert torch.equal(getattr(fused, name), getattr(split, name)), name
    with pytest.raises(RuntimeError, match="distinct"):
        search_and_apply_cpu(fused.w, fused.keep, fused.c, gd.gram, gd.diag, gd.rho, fused.s, fused.order, gd.rel,
                             torch.tensor([1, 1]), torch.zeros(2, dtype=torch.float64), fused.loss)
