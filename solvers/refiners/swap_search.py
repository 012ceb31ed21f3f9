"""Numeric kernels of the SparseSwaps 1-swap search (no orchestration here).

One row with weights ``w``, pruned set ``P``, kept set ``K``, residual ``r = w ⊙ 1_P`` and
``c = G r``. Unpruning ``u ∈ P`` and pruning ``p ∈ K`` changes the row's loss ``rᵀGr`` by

    Δ(u, p) = a_u + b_p − 2 w_u w_p G_up,
    a_u = w_u² G_uu − 2 w_u c_u,      b_p = w_p² G_pp + 2 w_p c_p,

and after the swap ``c ← c − w_u G[:, u] + w_p G[:, p]`` (units: those of the loss).

**Exact search with bounds (per-row pattern).** Write ``s_j² = w_j² G_jj`` and
``α_j = −2 w_j c_j`` (so ``a_u = s_u² + α_u``, ``b_p = s_p² − α_p``) and let
``ρ_u = max_{j≠u} |G_uj| / sqrt(G_uu G_jj)`` (fixed per column, computed once). Since
``|w_u w_p G_up| ≤ ρ_u s_u s_p``,

    min_p Δ(u, p) ≥ LB_u = a_u + min_{p∈K} (b_p − 2 s_p t_u),      t_u = ρ_u s_u.

The fused CPU kernel (:mod:`solvers.refiners.swap_cpp`) evaluates this lower envelope of lines
exactly per row (convex-hull trick). The pure-torch path here uses a coarser, cheaper
form of the same bound: ``Δ(u,p) ≥ α_u + (1 − ρ_u²) s_u² + β_p + (s_p − t_u)²`` with
``β_p = −α_p``, kept columns grouped in log-spaced bins of ``s`` (``BINS_PER_OCTAVE`` per
octave around the row's median ``s``; per bin ``min β`` and ``[min s, max s]`` over its kept
columns) and ``t`` in ``t_bins`` per-row quantile intervals, so a table of
``t_bins × S_BINS`` values per row bounds every ``u``. Either way the ``u`` with the smallest
bound is evaluated exactly (one row of ``G``), giving an incumbent; every other ``u`` whose
bound is below the incumbent (minus a rounding slack) is evaluated exactly as well. The
result is the exact minimum of Δ over all pairs (up to floating-point rounding).

**N:M.** Swaps stay inside one group of ``m`` columns; all ``(m−n)·n`` pairs of every
group are evaluated (``d_in·m`` values per row), using the ``m × m`` diagonal blocks of ``G``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

INF = float("inf")
BINS_PER_OCTAVE = 2
S_BIN_ZERO = 12   # bins below the row's median s (6 octaves)
S_BINS = 36       # 6 octaves below to 12 octaves above the median, end bins open


def max_abs_correlation(gram: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """``ρ_u = max_{j≠u} |G_uj| / sqrt(G_uu G_jj)`` in float64 ``[d]`` (0 for dead inputs)."""
    g = gram.to(torch.float64)
    d = g.shape[0]
    norm = torch.diagonal(g).clamp_min(0.0).sqrt()
    inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
    out = torch.zeros(d, dtype=torch.float64, device=g.device)
    for c0 in range(0, d, chunk):
        block = g[c0:c0 + chunk].abs() * inv[c0:c0 + chunk, None] * inv[None, :]
        idx = torch.arange(c0, min(c0 + chunk, d), device=g.device)
        block[idx - c0, idx] = 0.0
        out[c0:c0 + chunk] = block.amax(dim=1)
    return out.clamp(max=1.0)


@dataclass
class GramData:
    """Per-problem constants on the search device/dtype."""

    gram: torch.Tensor          # G [d, d]
    diag: torch.Tensor          # G_jj [d]
    rho: torch.Tensor           # ρ_j, inflated by the rounding slack, ≤ 1 [d]
    block: torch.Tensor | None  # N:M: diagonal m×m blocks of G [d/m, m, m]
    m: int | None               # N:M group size, None for per-row
    rel: float                  # relative rounding slack used in bound comparisons


def gram_data(gram: torch.Tensor, dtype: torch.dtype, device: torch.device, m: int | None,
              rho: torch.Tensor | None = None) -> GramData:
    rel = 1e-4 if dtype == torch.float32 else 1e-11
    g = gram.to(device=device, dtype=dtype)
    blk = None
    if m is not None:
        d = g.shape[0]
        idx = torch.arange(d, device=device).view(d // m, m)
        blk = g[idx[:, :, None], idx[:, None, :]]
        rho_t = torch.zeros(d, dtype=dtype, device=device)
    else:
        r = max_abs_correlation(gram) if rho is None else rho
        rho_t = (r.to(device) * (1 + rel) + rel).clamp(max=1.0).to(dtype)
    return GramData(g, torch.diagonal(g).clone(), rho_t, blk, m, rel)


@dataclass
class RowState:
    """Search state of the rows still improving (compact; row ``i`` of every tensor is ``rows[i]``)."""

    rows: torch.Tensor      # original row indices [n] (int64)
    w: torch.Tensor         # weights [n, d]
    keep: torch.Tensor      # bool keep-mask [n, d]
    c: torch.Tensor         # G r [n, d]
    s2: torch.Tensor | None  # w² G_jj [n, d] (torch search only; None for the C++ kernel, which reads s)
    q: torch.Tensor | None   # (1 − ρ²) w² G_jj [n, d] (torch search only)
    loss: torch.Tensor      # row losses rᵀ G r, float64 [n]
    s: torch.Tensor | None = None         # s_j = |w_j| sqrt(G_jj) (per-row pattern) [n, d]
    s_bin: torch.Tensor | None = None     # log-spaced bin of s_j, in [0, S_BINS) [n, d]
    t_bin: torch.Tensor | None = None     # interval index J(t_j) of every column [n, d]
    t_lo: torch.Tensor | None = None      # interval lower ends [n, T]
    t_hi: torch.Tensor | None = None      # interval upper ends [n, T]
    order: torch.Tensor | None = None     # C++ kernel: columns sorted by s, int32 [n, d]

    @property
    def n(self) -> int:
        return self.rows.shape[0]

    def select(self, idx: torch.Tensor) -> RowState:
        return RowState(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[idx]
                           for f in fields(self)})


def init_state(gd: GramData, weight: torch.Tensor, keep: torch.Tensor, rows: torch.Tensor,
               t_bins: int = 16, backend: str = "torch", order: torch.Tensor | None = None) -> RowState:
    """Build the state of ``rows`` (weights/keep given for those rows, any device/dtype).

    ``backend="cpp"`` prepares the per-row column order used by :mod:`solvers.refiners.swap_cpp`
    (``order``: one already computed for these rows, e.g. by the float32 search for the float64
    certification — the order depends only on ``w`` and ``G_jj``, and the kernel's bound stays
    valid where rounding makes it disagree with this state's ``s``), ``"torch"`` the bins of
    :func:`best_swaps`.
    """
    dev, dt = gd.gram.device, gd.gram.dtype
    w = weight.to(device=dev, dtype=dt).contiguous()  # the C++ kernel needs row-major rows (GPT-2 weights are transposed views)
    keep = keep.to(dev)
    s2 = w * w * gd.diag
    loss = torch.empty(w.shape[0], dtype=torch.float64, device=dev)
    if gd.m is None and w.shape[0] > 0 and backend == "cpp":
        # the kernel reads w, keep, c, s and the order only: no s² or q (8 bytes per entry less in
        # float32, 16 in the float64 certification; 0.72 GB at 4096 × 11008)
        from solvers.refiners.swap_cpp import column_order

        column = column_order(s2) if order is None else order.to(device=dev, dtype=torch.int32)
        st = RowState(rows.to(dev), w, keep, torch.empty_like(w), None, None, loss, s=s2.sqrt_(), order=column)
        refresh(gd, st)
        return st
    st = RowState(rows.to(dev), w, keep, torch.empty_like(w), s2, s2 * (1 - gd.rho * gd.rho), loss)
    refresh(gd, st)
    if gd.m is None and w.shape[0] > 0:
        _init_bounds(st, gd, t_bins)
    return st


def _init_bounds(st: RowState, gd: GramData, t_bins: int) -> None:
    n, d = st.w.shape
    s = st.s2.sqrt()
    st.s = s
    med = s.median(dim=1, keepdim=True).values.clamp_min(torch.finfo(s.dtype).tiny)
    octave = torch.log2(s / med).mul_(BINS_PER_OCTAVE).floor_().add_(S_BIN_ZERO)
    st.s_bin = octave.clamp_(0, S_BINS - 1).long()
    t = gd.rho * s
    # interval edges of t: quantiles of t over the warm-start pruned columns (fixed afterwards)
    t_sorted = torch.sort(torch.where(st.keep, INF, t), dim=1).values
    k = max(1, int((~st.keep[0]).sum()) if n else 1)
    pos = ((torch.arange(1, t_bins, device=t.device) * k) // t_bins).clamp(max=d - 1)
    t_max = t.amax(dim=1, keepdim=True)
    inner = t_sorted[:, pos]
    inner = torch.cummax(torch.where(torch.isfinite(inner), inner, t_max), dim=1).values
    zero = torch.zeros(n, 1, dtype=t.dtype, device=t.device)
    st.t_lo = torch.cat([zero, inner], dim=1)
    st.t_hi = torch.cat([inner, t_max], dim=1)
    st.t_bin = torch.searchsorted(inner.contiguous(), t.contiguous(), right=True)


REFRESH_CHUNK_BYTES = 64 << 20
"""Rows per block of the refresh: its residual and product temporaries stay near this size (64 MiB)."""


def refresh(gd: GramData, st: RowState, rows: torch.Tensor | None = None) -> None:
    """Recompute ``c = G r`` and the row losses from scratch (removes incremental drift).

    ``rows`` (increasing state row indices) limits it to those rows, computed as the same
    products, in the same blocks of rows, as a state holding only them would compute. Blocks of
    ``REFRESH_CHUNK_BYTES`` rows bound the temporaries (residual, product, float64 sum) to that size
    instead of three ``d_out × d_in`` matrices; a full refresh writes ``c`` in place.
    """
    zero = torch.zeros((), dtype=st.w.dtype, device=st.w.device)
    count = st.n if rows is None else rows.numel()
    step = max(1, REFRESH_CHUNK_BYTES // max(1, st.w.shape[1] * st.w.element_size()))
    for r0 in range(0, count, step):
        if rows is None or count == st.n:
            block = slice(r0, min(r0 + step, count))
            r = torch.where(st.keep[block], zero, st.w[block])
            c = torch.matmul(r, gd.gram, out=st.c[block])
        else:
            block = rows[r0:r0 + step]
            r = torch.where(st.keep[block], zero, st.w[block])
            c = r @ gd.gram
            st.c[block] = c
        st.loss[block] = (r * c).sum(dim=1, dtype=torch.float64)


def apply_swaps(gd: GramData, st: RowState, idx: torch.Tensor, u: torch.Tensor, p: torch.Tensor,
                delta: torch.Tensor) -> None:
    """Unprune ``u`` and prune ``p`` in rows ``idx`` of the state; rank-two update of ``c``."""
    st.loss[idx] += delta.to(torch.float64)
    wu = st.w[idx, u]
    wp = st.w[idx, p]
    st.keep[idx, u] = True
    st.keep[idx, p] = False
    upd = torch.addcmul(wp[:, None] * gd.gram.index_select(0, p), wu[:, None], gd.gram.index_select(0, u),
                        value=-1.0)
    if idx.numel() == st.n:  # idx is sorted and unique: all rows, in order
        st.c += upd
    else:
        st.c[idx] = st.c[idx] + upd


def best_swaps(gd: GramData, st: RowState, start: int, stop: int, budget_bytes: int,
               exhaustive: bool = False, threshold: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Best swap of rows ``start:stop``: ``(Δ, u, p, pairs_rows_evaluated)``; Δ = +inf if none exists.

    ``exhaustive=True`` evaluates every ``u`` exactly (testing the bounds). ``threshold``
    (float64 ``[stop − start]``) skips every ``u`` whose bound is not below it either: Δ is still
    the exact minimum (same pair) where that minimum is below the threshold, otherwise some
    swap's value ≥ the threshold.
    """
    w, c, keep, s2 = st.w[start:stop], st.c[start:stop], st.keep[start:stop], st.s2[start:stop]
    alpha = -2.0 * w * c
    a = torch.where(keep, INF, s2 + alpha)
    b = torch.where(keep, s2 - alpha, INF)
    if gd.m is not None:
        return _best_nm(gd, w, a, b)
    r = w.shape[0]
    if r == 0 or not bool((~keep).any()) or not bool(keep.any()):
        return (torch.full((r,), INF, dtype=w.dtype, device=w.device),
                torch.zeros(r, dtype=torch.long, device=w.device),
                torch.zeros(r, dtype=torch.long, device=w.device), 0)
    rows_all = torch.arange(r, device=w.device)
    if exhaustive:
        lb = a
        u0 = torch.argmin(a, dim=1)
    else:
        lb, slack = _lower_bounds(gd, st, start, stop, alpha, keep)
        u0 = torch.argmin(lb, dim=1)
    best, p0 = _eval_rows(gd, w, a, b, rows_all, u0, budget_bytes)
    u_best = u0.clone()
    if exhaustive:
        cand = ~keep
    else:
        cut = best if threshold is None else torch.minimum(best, _round_up(threshold, best.dtype))
        cand = (lb - slack < cut[:, None]) & ~keep
    cand[rows_all, u0] = False
    ri, ui = torch.nonzero(cand, as_tuple=True)
    evaluated = r + ri.shape[0]
    if ri.shape[0]:
        val, pc = _eval_rows(gd, w, a, b, ri, ui, budget_bytes)
        new_best = best.scatter_reduce(0, ri, val, reduce="amin", include_self=True)
        win = (val == new_best[ri]) & (val < best[ri])
        pos = torch.arange(ri.shape[0], device=w.device)
        first = torch.full((r,), ri.shape[0], dtype=torch.long, device=w.device)
        first = first.scatter_reduce(0, ri[win], pos[win], reduce="amin", include_self=True)
        has = first < ri.shape[0]
        fi = first[has]
        u_best[has] = ui[fi]
        p0[has] = pc[fi]
        best = new_best
    return best, u_best, p0, evaluated


def _round_up(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``, rounded towards +inf (a threshold must not shrink when cast to float32)."""
    y = x.to(dtype)
    return torch.where(y.to(x.dtype) < x, torch.nextafter(y, torch.full_like(y, INF)), y)


def _lower_bounds(gd: GramData, st: RowState, start: int, stop: int, alpha: torch.Tensor,
                  keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``LB_u ≤ min_p Δ(u, p)`` for pruned ``u`` (+inf on kept columns) and its rounding slack."""
    r = alpha.shape[0]
    s = st.s[start:stop]
    flat = (st.s_bin[start:stop] + torch.arange(r, device=s.device)[:, None] * S_BINS).view(-1)
    init = torch.full((r * S_BINS,), INF, dtype=s.dtype, device=s.device)
    b_min = init.scatter_reduce(0, flat, torch.where(keep, -alpha, INF).view(-1), reduce="amin").view(r, S_BINS)
    s_min = init.scatter_reduce(0, flat, torch.where(keep, s, INF).view(-1), reduce="amin").view(r, S_BINS)
    s_max = (-init).scatter_reduce(0, flat, torch.where(keep, s, -INF).view(-1), reduce="amax").view(r, S_BINS)
    t_lo, t_hi = st.t_lo[start:stop], st.t_hi[start:stop]
    gap = torch.maximum(s_min[:, None, :] - t_hi[:, :, None], t_lo[:, :, None] - s_max[:, None, :])
    phi = (b_min[:, None, :] + gap.clamp_min(0.0).square()).amin(dim=2)
    phi_u = phi.gather(1, st.t_bin[start:stop])
    lb = torch.where(keep, INF, alpha + st.q[start:stop] + phi_u)
    slack = gd.rel * (alpha.abs() + st.s2[start:stop] + phi_u.abs().nan_to_num(0.0, 0.0, 0.0))
    return lb, slack


def _eval_rows(gd: GramData, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor, ri: torch.Tensor,
               ui: torch.Tensor, budget_bytes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``min_p Δ(u, p)`` and its argmin for (row ``ri``, column ``ui``) candidates."""
    n, d = ri.shape[0], w.shape[1]
    chunk = max(1, budget_bytes // (4 * d * w.element_size()))
    vals, args = [], []
    same = n == w.shape[0] and bool((ri == torch.arange(n, device=ri.device)).all())
    for c0 in range(0, n, chunk):
        r_ = ri[c0:c0 + chunk]
        u_ = ui[c0:c0 + chunk]
        wr = w if same and chunk >= n else w[r_]
        br = b if same and chunk >= n else b[r_]
        wu = w[r_, u_]
        row = gd.gram.index_select(0, u_).mul_(wr).mul_((-2.0 * wu)[:, None]).add_(br)
        v, arg = row.min(dim=1)
        vals.append(v + a[r_, u_])
        args.append(arg)
    return torch.cat(vals), torch.cat(args)


def _best_nm(gd: GramData, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    r, d = w.shape
    m = gd.m
    g = d // m
    wv = w.view(r, g, m)
    pair = (wv[:, :, :, None] * wv[:, :, None, :]).mul_(gd.block).mul_(-2.0)
    pair.add_(a.view(r, g, m, 1)).add_(b.view(r, g, 1, m))
    val, idx = pair.view(r, -1).min(dim=1)
    grp = idx // (m * m)
    u = grp * m + (idx // m) % m
    p = grp * m + idx % m
    return val, u, p, r
