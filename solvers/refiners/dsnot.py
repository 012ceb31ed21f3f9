"""DSnoT (Zhang et al., "Dynamic Sparse No Training", ICLR 2024), registered as ``dsnot``.

Training-free prune-and-grow refinement of a warm-start mask (default Wanda), following
the released code (github.com/zyxxmu/DSnoT, ``lib/prune.py::prune_DSnoT`` with the
statistics of ``lib/layerwrapper.py::WrappedGPT``):

* **Units.** The code's DSnoT metric is ``m_ij = W_ij · s_j`` with ``s_j`` =
  ``WrappedGPT.sum_metric_row`` = the per-sequence **sum** of ``x_j`` over its ``seqlen``
  tokens, averaged over the calibration sequences, i.e. ``s_j = seqlen · E[x_j]``. The
  per-row first-order error ``e_i = Σ_{j∈P_i} m_ij`` and the stopping threshold
  ``update_threshold`` (0.1) are in these units, so the threshold only means what it means in
  the paper when ``e`` carries the factor ``seqlen``. ``seqlen`` is the calibration
  sequence length recorded in the instance metadata (``models/`` writes it for every
  model-derived instance and crop); for instances without one (synthetic) it is
  :data:`DEFAULT_SEQLEN` = 2048, the sequence length of the released code's calibration
  (``get_loaders(..., seqlen=2048)`` in ``prune_DSnoT``). The ``seqlen`` setting overrides both.
* **Regrow** candidates: the initially pruned weights sorted by
  ``m_ij / Var(x_j)^pow_of_var`` (``pow_of_var`` = 1; kept weights enter the sort with 0, as
  in the code). Two pointers walk this order: when ``e_i > 0`` the next from the top
  (largest positive), otherwise the next from the bottom (most negative) — regrowing
  ``j`` changes ``e_i`` by ``−m_ij``, towards zero.
* **Prune** candidates (per-row pattern): the initially kept weights sorted by Wanda score
  ``|W_ij|·sqrt(G_jj)`` ascending, reordered as in ``return_reorder_indice``: negative-metric
  ones first (lowest Wanda first), positive-metric ones from the end (lowest Wanda first).
  When ``e_i < 0`` the next positive one is pruned, otherwise the next negative one
  (pruning ``j`` changes ``e_i`` by ``+m_ij``). **N:M**: the kept weight with the lowest
  Wanda score in the regrown weight's group of ``m`` (initially pruned ones excluded, a
  weight pruned by DSnoT is marked and not chosen again), so the pattern holds.
* A row swaps (regrow + prune, 1-for-1) while ``|e_i| > update_threshold`` (before the
  swap) and, with ``same_sign``, while the swap keeps ``sign(e_i)`` equal to its initial
  sign; once a row stops it never resumes. At most ``max_cycles`` = 50 cycles; pointers
  advance every cycle as in the code.
* ``same_sign``: the paper stops a row when the error's sign flips. The released code
  does so in its N:M branch, but in its unstructured branch the check is skipped by
  default (``--without_same_sign`` is ``type=bool, default=True``). Default
  ``same_sign=None`` reproduces the code: off for per-row, on for N:M.

Peak memory: ``dsnot_mask`` holds about eight ``d_out × d_in`` float64 / int64 arrays at once
(weights, metric, Wanda scores, regrow key and order, the prune order and its sort), ``≈ 64·d_out·d_in``
bytes beyond the problem (2.9 GB at 4096 × 11008); ``G`` is only read for its diagonal.

Departures (edge cases the code does not guard, and one statistic): a cycle whose regrow
candidate is not currently pruned or whose prune candidate is not currently kept (possible
only when a pointer runs into the other half of its list) stops that row instead of breaking
the row balance; ``Var(x_j) = 0`` is clamped to the smallest positive float (the code divides
by zero); exact zeros of ``m`` sit between negatives and positives in the prune order;
``Var(x_j)`` is the variance over all calibration tokens (``GramAccumulator``) where the code
averages the within-sequence variances (the two differ by the variance of the per-sequence
means; ``Var`` only orders the regrow candidates). Needs ``problem.input_mean`` and
``problem.input_var`` (from ``GramAccumulator`` or the instance file); raises
:class:`MissingStatisticsError` without them.
"""

from __future__ import annotations

import time

import torch

from solvers.baselines.selection import input_norms
from solvers.errors import MissingStatisticsError
from solvers.objective import check_feasible
from solvers.pattern import NM
from solvers.registration import register_solver
from solvers.result import FEASIBLE, TIME_LIMIT, make_result


def _take(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return t.gather(1, idx[:, None])[:, 0]


DEFAULT_SEQLEN = 2048
"""Calibration sequence length assumed for instances that record none (the released code's 2048)."""


def resolve_seqlen(problem, seqlen: int | None) -> tuple[int, str]:
    """``(seqlen, source)``: the setting, else the instance's ``seqlen`` metadata, else the default."""
    if seqlen is not None:
        return int(seqlen), "setting"
    recorded = problem.metadata.get("seqlen")
    if recorded:
        return int(recorded), "instance metadata"
    return DEFAULT_SEQLEN, "default"


def dsnot_mask(weight: torch.Tensor, gram: torch.Tensor, sequence_sum: torch.Tensor, var: torch.Tensor,
               keep: torch.Tensor, pattern, max_cycles: int = 50, update_threshold: float = 0.1,
               pow_of_var: float = 1.0, same_sign: bool | None = None, deadline: float | None = None
               ) -> tuple[torch.Tensor, dict]:
    """Refined keep-mask and statistics; all arithmetic in float64.

    ``sequence_sum`` is the code's ``sum_metric_row``: ``seqlen · E[x_j]`` (per-sequence sum of
    ``x_j``, averaged over sequences); ``update_threshold`` and the reported errors are in
    units of ``W · sequence_sum``.
    """
    w = weight.to(torch.float64)
    metric = w * sequence_sum.to(torch.float64)[None, :]
    wanda = w.abs() * input_norms(gram)[None, :]
    keep = keep.clone()
    pruned0 = ~keep
    r, d = w.shape
    rows = torch.arange(r)
    nm = isinstance(pattern, NM)
    if same_sign is None:
        same_sign = nm
    err = torch.where(pruned0, metric, 0.0).sum(dim=1)
    sign0 = torch.sign(err)
    regrow_key = torch.where(pruned0, metric, 0.0) / var.to(torch.float64).clamp_min(torch.finfo(torch.float64).tiny
                                                                                      ) ** pow_of_var
    regrow_order = torch.sort(regrow_key, dim=1, stable=True).indices
    ptr_r = torch.stack([torch.zeros(r, dtype=torch.long), torch.full((r,), d - 1)], dim=1)
    step = torch.tensor([1, -1])
    if nm:
        score = torch.where(pruned0, float("inf"), wanda)
        marked = float(score[torch.isfinite(score)].max()) + 1.0 if bool(torch.isfinite(score).any()) else 1.0
        offs = torch.arange(pattern.m)
    else:
        n_keep = int(keep[0].sum()) if r else 0
        kept_sorted = torch.sort(torch.where(pruned0, float("inf"), wanda), dim=1, stable=True).indices[:, :n_keep]
        vals = metric.gather(1, kept_sorted)
        pos = torch.arange(n_keep).expand(r, n_keep)
        key = torch.where(vals < 0, pos, torch.where(vals > 0, 2 * n_keep + (n_keep - 1 - pos), n_keep + pos))
        prune_order = kept_sorted.gather(1, torch.sort(key, dim=1, stable=True).indices)
        ptr_p = torch.stack([torch.zeros(r, dtype=torch.long), torch.full((r,), n_keep - 1)], dim=1)
    active = torch.ones(r, dtype=torch.bool)
    cycles = swaps = 0
    stopped_by_time = False
    while bool(active.any()) and cycles < max_cycles:
        if deadline is not None and time.perf_counter() >= deadline:
            stopped_by_time = True
            break
        cycles += 1
        slot_r = (err > 0).long()
        idx_r = _take(ptr_r, slot_r)
        valid = ptr_r[:, 0] <= ptr_r[:, 1]
        j_r = _take(regrow_order, idx_r.clamp(0, d - 1))
        ptr_r[rows, slot_r] += step[slot_r]
        if nm:
            cols = (j_r - j_r % pattern.m)[:, None] + offs[None, :]
            j_p = cols.gather(1, score.gather(1, cols).argmin(dim=1, keepdim=True))[:, 0]
            score[rows, j_p] = marked
        else:
            slot_p = (err < 0).long()
            idx_p = _take(ptr_p, slot_p)
            valid &= ptr_p[:, 0] <= ptr_p[:, 1]
            j_p = _take(prune_order, idx_p.clamp(0, max(n_keep - 1, 0))) if n_keep else j_r
            ptr_p[rows, slot_p] += step[slot_p]
        m_r, m_p = _take(metric, j_r), _take(metric, j_p)
        after = err + m_p - m_r
        ok = active & valid & (err.abs() > update_threshold)
        if same_sign:
            ok &= sign0 == torch.sign(after)
        ok &= ~_take(keep, j_r) & _take(keep, j_p) & (j_r != j_p)
        keep[rows[ok], j_r[ok]] = True
        keep[rows[ok], j_p[ok]] = False
        err = torch.where(ok, after, err)
        swaps += int(ok.sum())
        active = ok
    stats = {"cycles": cycles, "swaps": swaps, "rows_still_active": int(active.sum()),
             "abs_error_initial_mean": float(torch.where(pruned0, metric, 0.0).sum(1).abs().mean()) if r else 0.0,
             "abs_error_final_mean": float(err.abs().mean()) if r else 0.0,
             "same_sign": bool(same_sign), "stopped_by_time": stopped_by_time}
    return keep, stats


@register_solver("dsnot", "refiner", "DSnoT prune-and-grow on the first-order error Σ_P W_ij·seqlen·E[x_j] (Zhang et al. 2024)",
                 uses_warm_start=True, default_warm_start=("wanda",))
def solve_dsnot(problem, warm_start, time_limit, seed, max_cycles: int = 50, update_threshold: float = 0.1,
                pow_of_var: float = 1.0, same_sign: bool | None = None, seqlen: int | None = None):
    """DSnoT refinement; see the module docstring."""
    if problem.input_mean is None or problem.input_var is None:
        raise MissingStatisticsError(
            "dsnot needs per-input statistics: the instance has no input_mean / input_var "
            "(build it with GramAccumulator or MaskProblem.from_activations, or add them to the instance file)")
    if warm_start is None:
        raise ValueError("dsnot refines a mask: give a warm start (solver name, chain, mask or result)")
    if max_cycles < 0 or update_threshold < 0:
        raise ValueError("max_cycles and update_threshold must be >= 0")
    seqlen, seqlen_source = resolve_seqlen(problem, seqlen)
    if seqlen < 1:
        raise ValueError(f"seqlen must be >= 1, got {seqlen}")
    t0 = time.perf_counter()
    keep = check_feasible(problem, warm_start.mask)
    deadline = t0 + time_limit if time_limit else None
    sequence_sum = seqlen * problem.input_mean.to(torch.float64)
    mask, stats = dsnot_mask(problem.weight, problem.gram, sequence_sum, problem.input_var, keep,
                             problem.pattern, max_cycles, update_threshold, pow_of_var, same_sign, deadline)
    stats["rows_changed"] = int((mask != keep).any(dim=1).sum())
    stats["seqlen_source"] = seqlen_source
    status = TIME_LIMIT if stats["stopped_by_time"] else FEASIBLE
    res = make_result(problem, mask, "dsnot", status, iterations=stats["cycles"], extra=stats,
                      settings={"max_cycles": max_cycles, "update_threshold": update_threshold,
                                "pow_of_var": pow_of_var, "same_sign": same_sign, "seqlen": seqlen},
                      solve_seconds=time.perf_counter() - t0)
    res.trace = [(0.0, float(warm_start.objective)), (res.solve_seconds, res.objective)]
    return res
