"""SparseSwaps 1-swap refinement, registered as ``swap``.

Starting from a feasible mask (default: Wanda), every iteration each row applies its
*best* swap — unprune ``u ∈ P``, prune ``p ∈ K`` with the exact minimum of
``Δ(u, p) = w_u²G_uu − 2w_u c_u + w_p²G_pp + 2w_p c_p − 2w_u w_p G_up`` (``c = G r``) — when
``Δ < −tol · f_i`` (``f_i`` = the row's current loss, ``tol`` = 1e-6 by default). A row
whose best swap does not pass that test is 1-swap optimal and, since rows are
independent, never changes again; it leaves the search. N:M swaps stay inside one group.
The exact best-swap search (bounds + exact evaluation of the surviving candidates) is in
:mod:`solvers.refiners.swap_search`.

Numerics: the search runs in ``dtype`` (float32 by default) with ``c`` updated by rank-two
updates and recomputed from scratch every ``refresh_every`` iterations. With ``certify``
(default) the float32 fixed point is then re-checked — and, if needed, continued — in
float64, so status ``feasible`` means *no swap improves any row by more than*
``tol · f_i`` *in float64*. Finally every row that changed is compared in float64 with the
warm start and falls back to it if it got worse (never seen; recorded in ``extra``); its float64
loss is the certification state's (evaluated at its start, plus each swap's float64 Δ), or a fresh
evaluation when no float64 run took place.

Where: ``device`` (``auto``/None = CUDA when present) and ``backend``: ``auto`` takes the fused C++
kernel for per-row patterns on the CPU (when it builds) and batched torch otherwise; ``torch``
forces batched torch; ``cpp`` asks for the kernel, so without a ``device`` it runs on the CPU also
where CUDA is present. Measured on an H200 (``bench/studies/device_check.sh``, docs/results/2026-11-29-gpu-h200.md): identical
objectives to the CPU's on real layers; no faster than 2 CPU cores on 576 × 576 layers, where a
sweep is launch-bound.

Peak memory (bytes beyond the problem; ``n = d_out·d_in``, ``b`` = bytes of ``dtype``): the search's
copy of ``G`` in ``dtype`` (float32: ``4·d_in²``; none for float64 when ``G`` is already float64 on
the device) and ``ρ``; the row state and the refresh's residual (``c = G r`` is recomputed in place).
With the fused C++ kernel (per-row patterns on the CPU) the state is ``w, c, s`` in ``dtype``, the
keep-mask and the int32 column order: ``(4·b + 5)·n`` with the residual, ``21·n`` in float32, ``37·n``
in float64; the torch search also keeps ``s², q`` and its bins (``≈ 33·n`` / ``≈ 61·n``). The float64
certification starts after the float32 copy of ``G`` is freed, so the peak is
``max(4·d_in² + 21·n, 37·n)`` plus the search's temporaries, capped by ``memory_budget_mb`` (512 MB):
about 1.7 GB at 4096 × 11008 (measured in ``bench/studies/solver_memory.py``, ``docs/scale-solvers.md``).
No tensor has more than ``d_in²`` or ``d_out·d_in`` entries.

Trace: ``result.trace[t] = (seconds since the solve started, total objective after
iteration t)`` with t = 0 the warm start. The per-iteration objective is the search's
running value (float64 sums of the search's Δ, exact after each refresh); the final
``objective`` is re-verified in float64. ``extra["trace_rows_improving"][t]`` is the number of
rows that swapped in iteration t+1 and ``extra["iteration_seconds"]`` each iteration's time.
"""

from __future__ import annotations

import time

import torch

from solvers.device import pick_device
from solvers.objective import check_feasible, row_objectives
from solvers.pattern import NM
from solvers.problem import MaskProblem
from solvers.refiners.cpu_kernels import choose_backend, kernel_device, load
from solvers.refiners.swap_cpp import search_and_apply_cpu
from solvers.refiners.swap_search import (
    GramData,
    RowState,
    apply_swaps,
    best_swaps,
    gram_data,
    init_state,
    max_abs_correlation,
    refresh,
)
from solvers.registration import register_solver, warm_row_objectives
from solvers.result import FEASIBLE, ITERATION_LIMIT, TIME_LIMIT, make_result

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def default_max_iters(problem: MaskProblem) -> int:
    """Safety cap when ``max_iters`` is None: ``10 · d_in`` iterations (every accepted swap
    strictly lowers a row's loss, so the search terminates anyway; the cap only guards
    against pathological rounding)."""
    return 10 * problem.d_in + 10


def _budget_rows(n: int, d: int, elem: int, budget_bytes: int, per_col: int) -> int:
    return max(1, min(n, budget_bytes // max(1, per_col * d * elem)))


def resolve_backend(backend: str, device: torch.device, m: int | None) -> str:
    """``"cpp"`` (fused CPU kernel, per-row pattern on CPU) or ``"torch"``; ``"auto"`` picks cpp when it builds."""
    return choose_backend(backend, device, "swap", "the per-row pattern on CPU", cpp_possible=m is None)


def search_sweep(gd: GramData, st: RowState, budget_bytes: int, exhaustive: bool = False,
                 rows: torch.Tensor | None = None, threshold: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Best swap of every row of ``st``, chunked so temporaries stay near ``budget_bytes``.

    Uses the fused CPU kernel when the state was built for it (``st.order`` set); only that
    kernel takes ``rows`` (state rows to search, outputs in that order; default all).
    ``threshold`` (float64, one per searched row; the solver passes ``−tol·f_i``) asks only for
    swaps below it: where a row's best Δ is below its threshold it is returned exactly (same
    pair as without a threshold), otherwise a value ≥ the threshold — enough to decide which
    rows swap, and much cheaper on converged rows. None: every row's exact minimum.
    """
    if st.order is not None:
        from solvers.refiners.swap_cpp import best_swaps_cpu

        return best_swaps_cpu(st.w, st.keep, st.c, gd.gram, gd.diag, gd.rho, st.s,
                              None if exhaustive else st.order, gd.rel, rows, threshold)
    if rows is not None:
        raise ValueError("rows= is for the C++ kernel; the torch search works on a compacted state")
    d = st.w.shape[1]
    per_col = 3 * gd.m + 4 if gd.m is not None else 14
    chunk = _budget_rows(st.n, d, st.w.element_size(), budget_bytes, per_col)
    out, evaluated = [], 0
    for r0 in range(0, st.n, chunk):
        r1 = min(r0 + chunk, st.n)
        delta, u, p, ev = best_swaps(gd, st, r0, r1, budget_bytes, exhaustive,
                                     None if threshold is None else threshold[r0:r1])
        out.append((delta, u, p))
        evaluated += ev
    if not out:
        empty = torch.empty(0, device=st.w.device)
        return empty, empty.long(), empty.long(), 0
    return (torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out]), torch.cat([o[2] for o in out]),
            evaluated)


def run_swaps(problem: MaskProblem, keep: torch.Tensor, rows: torch.Tensor, gd: GramData, *, tol: float,
              max_iters: int, refresh_every: int, budget_bytes: int, deadline: float | None,
              t_start: float, loss_all: torch.Tensor, trace: list, improving: list, seconds: list,
              t_bins: int, backend: str, progress: bool = False, order: torch.Tensor | None = None
              ) -> tuple[int, str, torch.Tensor | None]:
    """Iterate best swaps on ``rows`` until none improves; updates ``keep`` / ``loss_all`` in place.

    Rows that stop improving leave the search. With the torch search the state is compacted to
    the remaining rows (cheap on a GPU); with the C++ kernel the state stays in place and the
    kernel is given the list of ``active`` rows (compacting ``w, keep, c, s, order`` every
    iteration cost about as much as the search itself on 576×576 layers), and the kernel also applies
    the swaps it finds (:func:`~solvers.refiners.swap_cpp.search_and_apply_cpu`). Both visit the same
    rows in the same order with the same per-row search, so they take the same swaps.

    ``order``: the C++ kernel's column order of these rows from an earlier run (see
    :func:`~solvers.refiners.swap_search.init_state`). Returns ``(iterations, status, order)``.
    """
    every_row = rows.numel() == problem.d_out and bool((rows == torch.arange(problem.d_out)).all())  # no copy of W
    st = init_state(gd, problem.weight if every_row else problem.weight[rows], keep[rows], rows, t_bins, backend,
                    order)
    loss_all[rows] = st.loss.cpu()
    status, it = FEASIBLE, 0
    active = torch.arange(st.n) if st.order is not None else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(desc=f"swap ({gd.gram.dtype})", unit="it")
    while (st.n if active is None else active.numel()) > 0:
        if it >= max_iters:
            status = ITERATION_LIMIT
            break
        if deadline is not None and time.perf_counter() >= deadline:
            status = TIME_LIMIT
            break
        t_it = time.perf_counter()
        if it > 0 and it % refresh_every == 0:
            refresh(gd, st, active)
        threshold = -tol * (st.loss if active is None else st.loss[active])  # float64
        if active is not None:  # the C++ kernel: every row below its threshold swaps within the search
            better = search_and_apply_cpu(st.w, st.keep, st.c, gd.gram, gd.diag, gd.rho, st.s, st.order, gd.rel,
                                          active, threshold, st.loss)
            idx = torch.nonzero(better).flatten()
            if idx.numel() < active.numel():
                active = active[idx]
            loss_all[st.rows] = st.loss
            _record(t_it, t_start, loss_all, idx, seconds, trace, improving, bar)
            it += 1
            continue
        delta, u, p, _ = search_sweep(gd, st, budget_bytes, threshold=threshold)
        better = delta.to(torch.float64) < threshold
        done = ~better
        if bool(done.any()):
            keep[st.rows[done].cpu()] = st.keep[done].cpu()
            loss_all[st.rows[done].cpu()] = st.loss[done].cpu()
        idx = torch.nonzero(better).flatten()
        if idx.numel():
            apply_swaps(gd, st, idx, u[idx], p[idx], delta[idx])
        if bool(done.any()):
            st = st.select(idx)
        loss_all[st.rows.cpu()] = st.loss.cpu()
        _record(t_it, t_start, loss_all, idx, seconds, trace, improving, bar)
        it += 1
    if bar is not None:
        bar.close()
    if st.n:
        keep[st.rows.cpu()] = st.keep.cpu()
    return it, status, st.order


def _record(t_it: float, t_start: float, loss_all: torch.Tensor, idx: torch.Tensor, seconds: list,
            trace: list, improving: list, bar) -> None:
    """Append iteration ``it``'s time, running objective and number of improving rows."""
    now = time.perf_counter()
    seconds.append(now - t_it)
    trace.append((now - t_start, float(loss_all.sum())))
    improving.append(int(idx.numel()))
    if bar is not None:
        bar.update(1)
        bar.set_postfix(rows=int(idx.numel()), objective=f"{trace[-1][1]:.6g}")


@register_solver("swap", "refiner", "SparseSwaps: each row applies its exact best 1-swap until none improves",
                 uses_warm_start=True, default_warm_start=("wanda",), prepare=load)
def solve_swap(problem: MaskProblem, warm_start, time_limit, seed, max_iters: int | None = None,
               tol: float = 1e-6, refresh_every: int = 16, memory_budget_mb: float = 512.0,
               device: str | None = None, dtype: str = "float32", certify: bool = True,
               t_bins: int = 16, backend: str = "auto", progress: bool = False):
    """SparseSwaps 1-swap refinement; see the module docstring for the settings."""
    if warm_start is None:
        raise ValueError("swap refines a mask: give a warm start (solver name, chain, mask or result)")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if refresh_every < 1 or t_bins < 1:
        raise ValueError("refresh_every and t_bins must be positive")
    # the fused kernel is CPU-only: asking for it without a device means the CPU, also where CUDA is present
    dev = kernel_device(backend, device)
    m = problem.pattern.m if isinstance(problem.pattern, NM) else None
    search_backend = resolve_backend(backend, dev, m)  # may compile the C++ kernel: before the clock starts
    t_start = time.perf_counter()
    deadline = t_start + time_limit if time_limit else None
    cap = default_max_iters(problem) if max_iters is None else int(max_iters)
    budget = int(memory_budget_mb * 2**20)
    keep = check_feasible(problem, warm_start.mask).clone()
    loss_all = torch.zeros(problem.d_out, dtype=torch.float64)
    trace = [(0.0, float(warm_start.objective))]
    improving: list[int] = []
    seconds: list[float] = []
    common = {"tol": tol, "refresh_every": refresh_every, "budget_bytes": budget, "deadline": deadline,
              "t_start": t_start, "loss_all": loss_all, "trace": trace, "improving": improving,
              "seconds": seconds, "t_bins": t_bins, "backend": search_backend,
              "progress": progress}
    rho = max_abs_correlation(problem.gram) if m is None else None  # float64; shared by search and certification
    gd = gram_data(problem.gram, DTYPES[dtype], dev, m, rho)
    all_rows = torch.arange(problem.d_out)
    iters, status, order = run_swaps(problem, keep, all_rows, gd, max_iters=cap, **common)
    search_iters, certify_iters = iters, 0
    last_run_float64 = dtype == "float64"
    if certify and status == FEASIBLE and dtype != "float64":
        del gd  # the float32 copy of G (4·d_in²) is not needed by the certification
        gd64 = gram_data(problem.gram, torch.float64, dev, m, rho)
        certify_iters, status, _ = run_swaps(problem, keep, all_rows, gd64, max_iters=max(1, cap - iters),
                                             order=order, **common)
        iters += certify_iters
        last_run_float64 = True
    # float64 guard: no changed row may end worse than in the warm start. After a float64 run the
    # state's losses are float64 evaluations of the final rows (recomputed at its start, then exact
    # float64 Δ of each swap); otherwise the rows are evaluated again.
    final_rows = loss_all if last_run_float64 else row_objectives(problem, keep)
    warm_rows = warm_row_objectives(problem, warm_start)
    worse = (keep != warm_start.mask).any(dim=1) & (final_rows > warm_rows)
    if bool(worse.any()):
        keep[worse] = warm_start.mask[worse]
    extra = {"trace_rows_improving": improving, "iteration_seconds": seconds,
             "search_iterations": search_iters, "certify_iterations": certify_iters,
             "rows_reverted_to_warm_start": int(worse.sum()), "device": str(dev),
             "rows_changed": int((keep != warm_start.mask).any(dim=1).sum())}
    settings = {"max_iters": max_iters, "tol": tol, "refresh_every": refresh_every,
                "memory_budget_mb": memory_budget_mb, "device": str(dev), "dtype": dtype, "certify": certify,
                "t_bins": t_bins, "backend": common["backend"]}
    return make_result(problem, keep, "swap", status, iterations=iters, trace=trace, extra=extra,
                       settings=settings, solve_seconds=time.perf_counter() - t_start)


def best_swap_deltas(problem: MaskProblem, mask, device: str | None = None,
                     memory_budget_mb: float = 512.0, backend: str = "auto") -> torch.Tensor:
    """Certificate: each row's minimum Δ over all feasible 1-swaps, float64 ``[d_out]``.

    Exact (float64 search with bounds, then exact evaluation of every candidate that the
    bounds cannot rule out). ``+inf`` for rows without any swap (k = 0, k = d_in). A mask
    is 1-swap optimal with tolerance ``tol`` iff ``best_swap_deltas(...) >= -tol · f_i``.
    """
    keep = check_feasible(problem, mask)
    m = problem.pattern.m if isinstance(problem.pattern, NM) else None
    dev = pick_device(device)
    gd = gram_data(problem.gram, torch.float64, dev, m)
    st = init_state(gd, problem.weight, keep, torch.arange(problem.d_out), backend=resolve_backend(backend, dev, m))
    delta, _, _, _ = search_sweep(gd, st, int(memory_budget_mb * 2**20))
    return delta.to(torch.float64).cpu()
