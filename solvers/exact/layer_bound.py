"""Certified lower bounds for the rows of a layer, registered as the solver ``bound``.

Each row (normalised and reduced as in :mod:`solvers.exact.rows`: columns that no mask
better than the start can prune are fixed to kept) gets the Shor semidefinite bound of
:mod:`solvers.exact.sdp_bound`, computed from the constant start multipliers by at most
``newton_steps`` barrier-Newton steps (and within the row's share of the time limit), twice:
from barrier weight ``t₀ = f₀/dim`` and ``3 f₀/dim`` (``f₀`` the start's loss on the normalised
row, ``dim`` the free dimension; the barrier's gap bound ``t·dim`` then starts at the size of the
objective); the row keeps the better bound, and while it is below ``f₀/2`` it also tries
``10 f₀/dim`` and ``30 f₀/dim``. Why several starts: the short ascent is sensitive to
``t₀``. On full q_proj rows (30 steps, bound / 1-swap loss) row 380 gave 0.470 from ``f₀/dim``
and 0.768 from ``3 f₀/dim``; row 163 gave 0.745 and 0.054; the branch-and-bound root's
``t₀ = 1`` (≈ 36 f₀/dim there) left row 163 at ``h = −6.1 f₀`` after 175 steps. Splitting one
budget into short stages with ``t ← t/10`` between them was worse on both rows. A gate_proj
row (block 27, row 299) gave −0.14 / −0.88 from weights 1 / 3 but 0.547 / 0.616 from 10 / 30.
The bound is *certified at whatever point the ascent stops* (Frank–Wolfe minorant with a
rounding margin), so a budget trades tightness for time but never validity. Per row it is
clipped to ``[0, loss of the start]`` (``Q ⪰ 0``; the optimum is at most the start's loss).

Result: the warm start's mask, unchanged (``status`` ``feasible``), with
``row_lower_bounds`` / ``lower_bound`` set, so ``objective / lower_bound − 1`` is the start's
certified gap. In a suite, ``name = "bound"`` with ``warm_start = "wanda+swap"`` stores 1-swap's
certified gap next to the other results (the store and reports already carry
``lower_bound``).

Why this budget (measured on full 576-column rows of SmolLM2-135M layer-3 q_proj, one
thread, machine shared; ratio = bound / 1-swap loss): from ``t₀ = 1``, 10 Newton steps gave
no bound, 20 steps 0.750 / 0.755, 40 steps 0.758 / 0.768, and the converged Shor value was the
same 0.758 / 0.768 (11–16 s); from ``t₀ = f₀/dim``, rows 44 / 163 gave 0.781 / 0.737 after 20
steps and 0.782 / 0.744 after 40 (1.3–5 s per row on the loaded machine). Tried and dropped: one
diagonal shift of ``G`` shared by all rows (one eigenproblem per step for the whole layer,
first-order ascent) reached only 0.69 of 1-swap on d = 64 crops after 100 steps where the
per-row Shor bound gave 0.96–0.99 in a quarter of a second per row.

**Relaxation** (setting ``relaxation``): ``"shor"`` (default) stops there; ``"dnn"`` then computes the
doubly-nonnegative bound (Shor plus the RLT pair inequalities) from the best Shor point and keeps the
larger certified bound (so never below ``shor``), by one of two methods (setting ``dnn_method``):

* ``"admm"`` (default): the facially reduced splitting over *all* pairs of :mod:`solvers.exact.dnn_admm`,
  at most ``dnn_steps`` iterations (default 600), its dual certified through the Lagrangian every 200;
  on full 576-column SmolLM2 rows it lifts the bound well past the barrier method's at about 60–100 s
  per row (one thread; docs/results/2026-12-07-dnn-admm.md);
* ``"barrier"``: at most ``dnn_steps`` (default 100) Newton steps of the active-set ascent of
  :mod:`solvers.exact.dnn_bound` (at most ``dnn_pairs · m`` pairs, default ``m``), started at ``10 ×`` the
  Shor ascent's final barrier weight: +0.010–0.017 of 1-swap's loss in 15–30 s per row
  (docs/results/2026-12-07-dnn-bound.md).

**Rows** (setting ``rows``; :mod:`solvers.exact.row_selection`): None (all rows), ``N`` (a sample of
``N`` rows drawn with the solve's ``seed``) or ``"A:B"`` (a range). Rows outside keep the bound 0 and
the result's ``extra`` carries ``rows``, ``sample`` and ``selection`` (the label that says a total over a
selection is not the layer's bound).

Settings: ``newton_steps`` (default 30), ``relaxation``, ``dnn_method``, ``dnn_steps``, ``dnn_pairs``, ``rows``, ``device``
(torch device of the per-row algebra, default CPU; on CUDA the rows run one after the other in this process
and ``workers`` is ignored: every row process would start a CUDA context of its own for one small row at a
time), plus the common exact settings (``row_time_limit``, ``workers``, ``threads``, ``reduce``, ``progress``;
``gap_tol`` is unused). The bound does not depend on the device beyond float64 rounding.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from solvers.device import pick_device
from solvers.exact.dnn_admm import dnn_admm_bound
from solvers.exact.dnn_bound import dnn_bound
from solvers.exact.row_pool import exact_settings, solve_rows, solver_threads
from solvers.exact.row_selection import select_rows
from solvers.exact.rows import RowOutcome, RowQP, diagonal_start
from solvers.exact.sdp_bound import GroupBasis, initial_multipliers, sdp_bound
from solvers.registration import WarmStart, register_solver, warm_row_objectives
from solvers.result import make_result

DEFAULT_NEWTON_STEPS = 30
START_WEIGHTS = (1.0, 3.0)
"""Barrier start weights ``t₀ = weight · f₀/dim``, one ascent each; the row keeps the best bound."""
EXTRA_WEIGHTS, WEAK = (10.0, 30.0), 0.5
"""Further start weights, tried only while the best bound is below ``WEAK · f₀``."""
RELAXATIONS, DNN_METHODS = ("shor", "dnn"), ("admm", "barrier")
DEFAULT_DNN_STEPS, DEFAULT_DNN_PAIRS = {"admm": 1200, "barrier": 100}, 1.0
"""Budget of the doubly-nonnegative stage (``relaxation="dnn"``) per method: splitting iterations
(``admm``) or Newton steps (``barrier``); and the barrier method's active pairs per column."""
DNN_T_RESTART, DNN_T_MIN = 10.0, 1e-7
"""The DNN stage starts at ``DNN_T_RESTART ×`` the Shor ascent's final barrier weight and stops once
``t·(dim + pairs) < DNN_T_MIN · |h|`` (measured choices: docs/results/2026-12-07-dnn-bound.md)."""


def shor_row_bound(row: RowQP, time_limit: float | None, newton_steps: int, device: str = "cpu") -> float:
    """Certified Shor bound of one normalised row after at most ``newton_steps`` Newton steps (0 if none)."""
    return row_bound(row, time_limit, newton_steps, device, relaxation="shor")


def row_bound(row: RowQP, time_limit: float | None, newton_steps: int, device: str = "cpu",
              relaxation: str = "shor", dnn_steps: int | None = None,
              dnn_pairs: float = DEFAULT_DNN_PAIRS, dnn_method: str = "admm") -> float:
    """Certified bound of one normalised row (0 if none): the Shor ascent of the module docstring and,
    for ``relaxation="dnn"``, then the doubly-nonnegative bound from the best Shor point by ``dnn_method``
    (``"admm"``: at most ``dnn_steps`` splitting iterations, :mod:`solvers.exact.dnn_admm`; ``"barrier"``:
    at most ``dnn_steps`` Newton steps with at most ``dnn_pairs · m`` active pair inequalities,
    :mod:`solvers.exact.dnn_bound`); the row keeps the larger certified bound, so ``dnn`` is never below
    ``shor``."""
    dev = torch.device(device)
    q = torch.from_numpy(row.q).to(dev)
    groups = [torch.from_numpy(np.asarray(g, dtype=np.int64)).to(dev) for g in row.groups]
    counts = [int(c) for c in row.counts]
    inner = [(g, c) for g, c in zip(groups, counts) if 0 < c < len(g)]
    if len(inner) < len(groups):
        # groups pruned entirely add their columns' fixed cost; the SDP bounds the rest
        forced = torch.zeros(row.d, dtype=torch.bool, device=dev)
        for g, c in zip(groups, counts):
            if c == len(g):
                forced[g] = True
        free = torch.nonzero(~forced & _members(inner, row.d, dev)).squeeze(1)
        if not len(free):
            f = forced.to(torch.float64)
            return float(f @ q @ f)
        pos = torch.full((row.d,), -1, dtype=torch.long, device=dev)
        pos[free] = torch.arange(len(free), device=dev)
        fz = forced.to(torch.float64)
        const = float(fz @ q @ fz)
        lin = q[free][:, forced].sum(1)
        q = q[free][:, free]
        groups, counts = [pos[g] for g, _ in inner], [c for _, c in inner]
    else:
        const, lin = 0.0, torch.zeros(row.d, dtype=torch.float64, device=dev)
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    start = row.warm if row.warm is not None else diagonal_start(row)
    base = max(row.value(start), 1e-12) / max(q.shape[0] - len(groups), 1)
    f0, best, best_out = row.value(start), -math.inf, None
    for i, weight in enumerate(START_WEIGHTS + EXTRA_WEIGHTS):
        if deadline is not None and time.perf_counter() >= deadline and math.isfinite(best):
            break
        if i >= len(START_WEIGHTS) and best + const >= WEAK * f0:
            break
        u = initial_multipliers(q, GroupBasis(q.shape[0], groups))
        out = sdp_bound(q, lin, groups, counts, u, weight * base, max_iterations=newton_steps, deadline=deadline)
        if out.bound > best:
            best, best_out = out.bound, out
    dnn_steps = DEFAULT_DNN_STEPS[dnn_method] if dnn_steps is None else dnn_steps
    if relaxation == "dnn" and best_out is not None and dnn_steps > 0 and q.shape[0] > 2 \
            and not (deadline is not None and time.perf_counter() >= deadline):
        if dnn_method == "admm":
            dnn = dnn_admm_bound(q, lin, groups, counts, best_out, iterations=dnn_steps, deadline=deadline)
        else:
            dnn = dnn_bound(q, lin, groups, counts, best_out.u, DNN_T_RESTART * best_out.t,
                            max_pairs=max(1, int(dnn_pairs * q.shape[0])), max_iterations=dnn_steps, deadline=deadline,
                            t_min=DNN_T_MIN)
        best = max(best, dnn.bound)
    return best + const if math.isfinite(best) else 0.0


def _members(groups_counts, d: int, dev) -> torch.Tensor:
    mask = torch.zeros(d, dtype=torch.bool, device=dev)
    for g, _ in groups_counts:
        mask[g] = True
    return mask


def bound_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Row solver for :func:`solvers.exact.row_pool.solve_rows`: a bound, no mask (the start is kept)."""
    t0 = time.perf_counter()
    with solver_threads(options["threads"]):
        bound = row_bound(row, time_limit, int(options["newton_steps"]), str(options["device"]),
                          str(options["relaxation"]), options["dnn_steps"], float(options["dnn_pairs"]),
                          str(options["dnn_method"]))
    timed_out = time_limit is not None and time.perf_counter() - t0 >= float(time_limit)
    return RowOutcome(None, max(0.0, bound), timed_out=timed_out, solve_seconds=time.perf_counter() - t0)


@register_solver("bound", "exact", "certified per-row Shor or doubly-nonnegative lower bounds under a Newton budget; "
                 "keeps the start's mask", uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"))
def solve_bound(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``newton_steps`` (default 30), ``relaxation`` (``"shor"`` default, or ``"dnn"``),
    ``dnn_method`` (``"admm"`` default, or ``"barrier"``), ``dnn_steps`` (default 1200 splitting iterations
    for admm, 100 Newton steps for barrier), ``dnn_pairs`` (barrier only, default 1.0), ``rows`` (None = all; ``N`` = a sample
    of N rows drawn with ``seed``; ``"A:B"`` = a range, :mod:`solvers.exact.row_selection`), ``device``
    (default "cpu"), plus the common exact settings. Rows outside ``rows`` keep the bound 0; the
    result's ``extra`` names the selection (``rows``, ``sample``, ``selection``). Deterministic given
    ``seed``. See the module docstring."""
    own = {"newton_steps": DEFAULT_NEWTON_STEPS, "device": "cpu", "relaxation": "shor", "dnn_steps": None,
           "dnn_pairs": DEFAULT_DNN_PAIRS, "dnn_method": "admm", "rows": None}
    opts = exact_settings(settings, own)
    if opts["dnn_method"] not in DNN_METHODS:
        raise ValueError(f"dnn_method must be one of {', '.join(DNN_METHODS)}, got {opts['dnn_method']!r}")
    if opts["dnn_steps"] is None:
        opts["dnn_steps"] = DEFAULT_DNN_STEPS[opts["dnn_method"]]
    for key in ("newton_steps", "dnn_steps"):
        if isinstance(opts[key], bool) or not isinstance(opts[key], int) or opts[key] < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {opts[key]!r}")
    if opts["relaxation"] not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {', '.join(RELAXATIONS)}, got {opts['relaxation']!r}")
    pairs = opts["dnn_pairs"]
    if isinstance(pairs, bool) or not isinstance(pairs, (int, float)) or not 0 < pairs < math.inf:
        raise ValueError(f"dnn_pairs must be a positive number (active pairs per column), got {pairs!r}")
    selection = select_rows(opts["rows"], problem.d_out, int(seed or 0))
    device = pick_device(opts["device"])
    opts["device"] = str(device)
    if device.type == "cuda":
        opts["workers"] = 1
    n_rows = len(selection.rows)
    if opts["row_time_limit"] is None and time_limit is not None:
        # an even share of the instance's time per row, so late rows are not starved
        opts["row_time_limit"] = float(time_limit) * min(opts["workers"], n_rows) / n_rows
    described = {"rows": selection.rows.tolist(), "sample": selection.sample, "selection": selection.label}
    if selection.everything:
        result = solve_rows(problem, warm_start, "bound", bound_row, time_limit, opts)
        result.extra.update(described)
        return result
    if warm_start is None:
        raise ValueError("a row selection needs a start mask (warm start)")
    sub = problem.crop(selection.rows, torch.arange(problem.d_in))
    rows_loss = warm_row_objectives(problem, warm_start)[selection.rows]
    sub_start = WarmStart(warm_start.mask[selection.rows], warm_start.label, float(rows_loss.sum()), rows_loss)
    part = solve_rows(sub, sub_start, "bound", bound_row, time_limit, opts)
    bounds = torch.zeros(problem.d_out, dtype=torch.float64)
    bounds[selection.rows] = part.row_lower_bounds
    result = make_result(problem, warm_start.mask, "bound", part.status, build_seconds=part.build_seconds,
                         solve_seconds=part.solve_seconds, message=part.message, extra={**part.extra, **described})
    result.row_lower_bounds = torch.minimum(bounds, result.row_objectives)
    result.lower_bound = float(result.row_lower_bounds.sum())
    result.settings = dict(part.settings)
    result.trace = list(part.trace)
    return result


def certified_gap(objective: float, lower_bound: float) -> float:
    """``objective / lower_bound − 1``: how far a mask can at most be from optimal, relative to the
    optimum (``inf`` when the bound is 0 and the objective is not)."""
    if lower_bound > 0:
        return objective / lower_bound - 1.0
    return 0.0 if objective <= 0 else math.inf
