"""Fused CPU kernel for the exact best 1-swap of every row (per-row pattern).

For each row ``i`` it returns ``min_{u∈P, p∈K} Δ(u, p)`` with
``Δ = a_u + b_p − 2 w_u w_p G_up`` (see :mod:`solvers.refiners.swap_search`) and a minimising pair.

Per row (all arithmetic of the bound in float64):

1. ``a``, ``b`` from ``c`` (one pass).
2. Lower bound ``LB_u = a_u + env(t_u)``, ``env(t) = min_{p∈K} (b_p − 2 s_p t)``,
   ``t_u = ρ_u s_u`` (valid because ``|w_u w_p G_up| ≤ ρ_u s_u s_p``). ``env`` is the lower
   envelope of lines, built by the convex-hull trick over the kept columns in order of ``s``
   (``order``, fixed per row). One pass down the order first drops the lines with
   ``b_p − 2 s_p t_max > min_q b_q`` (above the envelope on the whole query range ``[0, t_max]``)
   and the lines dominated by a line of larger ``s`` and smaller ``b`` (below them for every
   ``t ≥ 0``). The hull (typically 10–20 lines) is then evaluated line by line, vectorised over
   ``u``. A rounding slack
   ``rel·(|a_u| + |env| + 2 s_u²)`` is subtracted (``rel`` = 1e-4 float32, 1e-11 float64).
3. The ``u`` with the smallest bound is evaluated exactly (a SIMD min over all ``p`` of
   ``b_p − 2 w_u w_p G_up``; ``b_p = +inf`` on pruned columns) — the incumbent.
4. Every other ``u`` whose bound is below the current best is evaluated exactly. Skipped
   ``u`` provably cannot beat the best, so the result is the exact minimum. The minimising ``p``
   is looked up once, for the final ``u``.

With a per-row ``threshold`` (the solver passes ``−tol·f_i``, the most a swap must gain to be
taken) a ``u`` is evaluated only if its bound is also below the threshold, and the incumbent
only if its bound is. A converged row — whose best swap is usually well above ``−tol·f_i`` — is
then certified by its bounds and a few evaluations instead of an exact minimum. Rows with a swap
below the threshold get the same exact minimum and the same pair as without it (every ``u``
that could reach a value below the threshold has its bound below it, and is evaluated).

One sweep of ``swap`` (:func:`search_and_apply_cpu`) also applies the swaps: each row whose best
swap is below its threshold takes it right after its search, on the same thread, while the row is in
cache (the separate, single-threaded update pass it replaces took 3.1 s of a 117 s whole-model solve,
profiled; same arithmetic, same masks). The kernel's column order comes from :func:`column_order`.

Step 4 is blocked like a GEMM: a block of ``ROW_BLOCK`` rows keeps its ``b`` vectors in cache
while row ``u`` of ``G`` is streamed once per block. Blocks run on torch's intra-op threads
(``at::parallel_for``, ``torch.get_num_threads()`` of them), each taking the next block from a
shared counter. Torch's own threads rather than Python threads: after every torch operation
those threads spin a while waiting for more work, and Python threads running beside them got
nothing from a second core (a 576 × 576 warm sweep: 3.2 ms on two Python threads, 3.0 ms on
one, 1.75 ms on torch's two). Compiled with the flags of :mod:`solvers.refiners.cpu_kernels`
(``-ffp-contract=off``: no FMA contraction, so the SIMD and scalar passes produce bit-identical
values).

The C++ source is ``csrc/swap_cpu.cpp`` beside this file, compiled together with the lns
kernel by :mod:`solvers.refiners.cpu_kernels` (needs a C++ compiler; about a minute the first time,
outside every timed region). If that fails, ``swap`` falls back to the pure-torch search
(``MASKBENCH_NO_CPP=1`` forces the fallback).

Ties: the incumbent first, then the lowest ``u``; the lowest ``p`` for a given ``u``.
"""

from __future__ import annotations

import torch

from solvers.refiners.cpu_kernels import load, load_error

ROW_BLOCK = 32


def best_swaps_cpu(w: torch.Tensor, keep: torch.Tensor, c: torch.Tensor, gram: torch.Tensor,
                   diag: torch.Tensor, rho: torch.Tensor, s: torch.Tensor | None, order: torch.Tensor | None,
                   rel: float, rows: torch.Tensor | None = None, threshold: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(Δ, u, p, columns evaluated)`` per searched row (Δ = +inf when the row has no swap).

    ``s = |w|·sqrt(G_jj)`` ``[rows, d]`` and ``order`` (int32, each row's columns sorted by ``s``)
    enable the bounds; with ``order=None`` every pruned column is evaluated. ``rows`` (int64)
    selects the state rows to search, in that order (default: all); the outputs follow ``rows``.
    Selecting rows instead of copying the state into a compact one keeps the converged rows'
    data in place (no per-iteration gather of ``w, keep, c, s, order``).

    ``threshold`` (float64, one per searched row) asks only for swaps below it: Δ is the exact
    minimum where that minimum is below the threshold, and otherwise some value ≥ it (+inf when
    no column's bound reached it). See :func:`solvers.refiners.swap.search_sweep`.
    """
    return _search(w, keep, c, gram, diag, rho, s, order, rel, rows, threshold, None, None)


def search_and_apply_cpu(w: torch.Tensor, keep: torch.Tensor, c: torch.Tensor, gram: torch.Tensor,
                         diag: torch.Tensor, rho: torch.Tensor, s: torch.Tensor, order: torch.Tensor, rel: float,
                         rows: torch.Tensor, threshold: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    """One sweep of ``swap``: search ``rows`` as :func:`best_swaps_cpu` does and let every row whose best
    ``Δ`` is below its threshold (compared in float64) take that swap at once, in place: ``keep`` flipped,
    ``c ← c + (w_p G[p] − w_u G[u])`` (each operation rounded on its own) and ``loss[row] += Δ`` — done by
    the thread that searched the row, while the row is in its cache, instead of in a second,
    single-threaded pass. ``rows`` (int64, distinct), ``threshold`` (float64, one per row) and ``loss``
    (float64, one per state row) are required. Returns which of ``rows`` swapped (bool).
    """
    if not (w.is_contiguous() and keep.is_contiguous() and c.is_contiguous() and loss.is_contiguous()):
        raise ValueError("search_and_apply_cpu updates in place: contiguous state tensors required")
    applied = torch.zeros(rows.shape[0], dtype=torch.bool)
    _search(w, keep, c, gram, diag, rho, s, order, rel, rows, threshold, loss, applied)
    return applied


def _search(w, keep, c, gram, diag, rho, s, order, rel, rows, threshold, loss, applied
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The kernel call behind both functions above (``loss`` and ``applied`` None: search only)."""
    module = _module()
    use_bounds = order is not None
    if order is None:
        order = torch.zeros(1, dtype=torch.int32)
        s = torch.zeros(1, dtype=w.dtype)
    w, keep, c, s, order = (t.contiguous() for t in (w, keep, c, s, order))
    gram, diag, rho = gram.contiguous(), diag.contiguous(), rho.contiguous()
    rows = torch.arange(w.shape[0]) if rows is None else rows.to(torch.long).contiguous()
    r = rows.shape[0]
    if threshold is None:
        threshold = torch.empty(0, dtype=torch.float64)
    elif threshold.shape != (r,):
        raise ValueError(f"threshold: one value per searched row ({r}), got shape {tuple(threshold.shape)}")
    else:
        threshold = threshold.to(torch.float64).contiguous()
    val = torch.empty(r, dtype=w.dtype)
    u = torch.empty(r, dtype=torch.long)
    p = torch.empty(r, dtype=torch.long)
    if r == 0:
        return val, u, p, 0
    if applied is None:  # the kernel takes empty tensors for "do not apply"
        loss, applied = torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.bool)
    evaluated = module.best_swaps(w, keep, c, gram, diag, rho, s, order, rows, threshold, use_bounds, float(rel),
                                  ROW_BLOCK, val, u, p, loss, applied)
    return val, u, p, evaluated


def _module():
    """The compiled kernels, or a RuntimeError saying why they are unavailable."""
    module = load()
    if module is None:
        raise RuntimeError(f"the CPU swap kernel is unavailable: {load_error()}")
    return module


def column_order(values: torch.Tensor) -> torch.Tensor:
    """Each row's columns in ascending order of ``values`` ``[rows, d]`` (float32/64, CPU), int32; ties keep
    the column order. The permutation of ``torch.argsort(values, dim=1, stable=True)`` (−0.0 equals +0.0,
    NaN last), by a radix sort on torch's threads: 5.6 ms instead of 32 ms for 576 × 1 536 on 2 cores.
    """
    module = _module()
    values = values.contiguous()
    out = torch.empty(values.shape, dtype=torch.int32)
    if values.numel():
        module.column_order(values, out)
    return out
