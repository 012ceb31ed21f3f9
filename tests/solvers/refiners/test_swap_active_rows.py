"""The C++ search on a list of active rows equals the search on a state compacted to those rows."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.refiners.swap import search_sweep
from solvers.refiners.swap_search import gram_data, init_state, refresh


def _state(problem, keep, dtype=torch.float32):
    gd = gram_data(problem.gram, dtype, torch.device("cpu"), None)
    return gd, init_state(gd, problem.weight, keep, torch.arange(problem.d_out), backend="cpp")


@pytest.mark.usefixtures("cpp_kernel")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_active_rows_match_a_compacted_state(dtype):
    p = solvers.generate(family="small", d_in=40, d_out=70, seed=3)
    keep = solvers.solve("wanda", p).mask
    gd, st = _state(p, keep, dtype)
    active = torch.tensor([1, 2, 5, 33, 34, 35, 36, 50, 69])
    val, u, q, _ = search_sweep(gd, st, 1 << 26, rows=active)
    compact = st.select(active)
    ref_val, ref_u, ref_q, _ = search_sweep(gd, compact, 1 << 26)
    assert torch.equal(val, ref_val) and torch.equal(u, ref_u) and torch.equal(q, ref_q)
    full_val, full_u, _, _ = search_sweep(gd, st, 1 << 26)
    assert torch.equal(full_val[active], val) and torch.equal(full_u[active], u)
    assert search_sweep(gd, st, 1 << 26, rows=torch.empty(0, dtype=torch.long))[0].numel() == 0


@pytest.mark.usefixtures("cpp_kernel")
def test_refresh_of_active_rows_matches_a_compacted_refresh():
    p = solvers.generate(family="small", d_in=40, d_out=30, seed=4)
    gd, st = _state(p, solvers.solve("wanda", p).mask)
    active = torch.tensor([0, 7, 8, 29])
    st.c[active] += 1.0  # drift that the refresh must remove
    compact = st.select(active)
    refresh(gd, compact)
    refresh(gd, st, active)
    assert torch.equal(st.c[active], compact.c) and torch.equal(st.loss[active], compact.loss)


@pytest.mark.usefixtures("cpp_kernel")
def test_out_of_range_rows_are_refused():
    p = solvers.generate(family="small", d_in=24, d_out=6, seed=5)
    gd, st = _state(p, solvers.solve("wanda", p).mask)
    with pytest.raises(RuntimeError, match="row index out of range"):
        search_sweep(gd, st, 1 << 26, rows=torch.tensor([0, 6]))


def test_rows_are_only_for_the_cpp_search():
    p = solvers.generate(family="small", d_in=24, d_out=6, seed=5)
    gd = gram_data(p.gram, torch.float32, torch.device("cpu"), None)
    st = init_state(gd, p.weight, solvers.solve("wanda", p).mask, torch.arange(6), backend="torch")
    with pytest.raises(ValueError, match="C\\+\\+ kernel"):
        search_sweep(gd, st, 1 << 26, rows=torch.tensor([0]))
