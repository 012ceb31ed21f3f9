"""The best-swap search with a per-row threshold (what ``swap`` asks for: swaps below ``−tol·f_i``).

Rows whose exact best swap lies below the threshold must get the same value and pair as the
unrestricted search; the others only a value at or above the threshold. The C++ kernel must not
depend on the number of threads it runs on.
"""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.refiners.swap import search_sweep
from solvers.refiners.swap_search import gram_data, init_state

CASES = [("cpp", "per-row"), ("torch", "per-row"), ("torch", "2:4")]


def _states(backend: str, pattern: str, dtype: torch.dtype):
    """A layer-like problem at three masks: Wanda, part-way through 1-swap, and 1-swap's end."""
    p = solvers.generate(family="layer", d_in=160, d_out=48, seed=7, pattern=pattern)
    wanda = solvers.solve("wanda", p)
    masks = [wanda.mask,
             solvers.solve("swap", p, warm_start=wanda, max_iters=4, backend=backend).mask,
             solvers.solve("swap", p, warm_start=wanda, backend=backend).mask]
    m = 4 if pattern == "2:4" else None
    gd = gram_data(p.gram, dtype, torch.device("cpu"), m)
    return gd, [init_state(gd, p.weight, keep, torch.arange(p.d_out), backend=backend) for keep in masks]


@pytest.mark.parametrize(("backend", "pattern"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_threshold_keeps_every_swap_below_it(backend, pattern, dtype, request):
    if backend == "cpp":
        request.getfixturevalue("cpp_kernel")
    gd, states = _states(backend, pattern, dtype)
    mixed = 0
    for st in states:
        exact, u, q, ev_exact = search_sweep(gd, st, 1 << 26)
        ex = exact.double()
        # thresholds just above the exact minimum on even rows, just below it on odd rows,
        # and the solver's own −1e-6·f_i as a third case
        step = 1e-3 * st.loss + 1e-12
        above = torch.arange(st.n) % 2 == 0
        for thr in (torch.where(above, ex + step, ex - step), -1e-6 * st.loss):
            val, vu, vq, ev = search_sweep(gd, st, 1 << 26, threshold=thr)
            below = ex < thr
            assert torch.equal(val[below], exact[below])
            assert torch.equal(vu[below], u[below]) and torch.equal(vq[below], q[below])
            assert bool((val[~below].double() >= thr[~below]).all())
            assert ev <= ev_exact
            mixed += int(below.any() and (~below).any())
    assert mixed >= 3  # the cases really mix rows on both sides of their threshold


@pytest.mark.usefixtures("cpp_kernel")
def test_threshold_spares_evaluations_on_converged_rows():
    gd, states = _states("cpp", "per-row", torch.float32)
    converged = states[-1]
    _, _, _, ev_exact = search_sweep(gd, converged, 1 << 26)
    _, _, _, ev = search_sweep(gd, converged, 1 << 26, threshold=-1e-6 * converged.loss)
    assert ev < ev_exact


@pytest.mark.usefixtures("cpp_kernel")
def test_threshold_shape_checked():
    gd, states = _states("cpp", "per-row", torch.float32)
    with pytest.raises(ValueError, match="one value per searched row"):
        search_sweep(gd, states[0], 1 << 26, threshold=torch.zeros(3, dtype=torch.float64))


@pytest.mark.usefixtures("cpp_kernel")
def test_cpp_search_independent_of_thread_count():
    gd, states = _states("cpp", "per-row", torch.float32)
    before = torch.get_num_threads()
    try:
        out = {}
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out[threads] = [search_sweep(gd, st, 1 << 26)[:3] for st in states]
    finally:
        torch.set_num_threads(before)
    for threads in (2, 3):
        for ref, got in zip(out[1], out[threads]):
            assert all(torch.equal(a, b) for a, b in zip(ref, got))
