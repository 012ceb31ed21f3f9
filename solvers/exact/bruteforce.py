"""``bruteforce``: exact per-row optimum by enumerating every feasible pruning set.

Per row, every ``z ∈ {0,1}^d`` with ``Σz = k`` (per-row: ``C(d, k)`` sets) or
with ``m − n`` pruned in each of the ``d/m`` groups (N:M: ``C(m, m−n)^{d/m}``
sets) is evaluated as ``zᵀ q z = Σ_j (Z q)_j Z_j`` for chunks ``Z`` of candidate
vectors (a BLAS matrix product per chunk of about 2·10⁵ candidates); the
minimum is the optimum, so the lower bound equals the objective. An instance
whose per-row count exceeds ``max_subsets`` (default 5·10⁶) is refused with
status ``error`` before any work. Candidates are generated lazily, chunk by chunk, and the
time limit is checked between chunks (so within about a second); a timed-out row keeps the best
set seen, with the trivial bound 0.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from solvers.exact.row_pool import exact_setting_types, exact_settings, solve_rows
from solvers.exact.rows import RowOutcome, RowQP
from solvers.pattern import NM
from solvers.registration import register_solver
from solvers.result import error_result

MAX_SUBSETS = 5_000_000
CHUNK = 200_000


def subset_count(sizes: list[int], counts: list[int]) -> int:
    """Number of feasible pruning sets of one row: ``Π_t C(|g_t|, c_t)``."""
    return math.prod(math.comb(n, c) for n, c in zip(sizes, counts))


def _candidate_chunks(row: RowQP):
    """Yield index arrays ``[C, k]`` of pruned columns covering every feasible set once, lazily.

    One set (per-row): ``itertools.combinations`` streamed ``CHUNK`` at a time, so memory stays
    ``O(CHUNK · k)`` however large ``C(d, k)`` is and a time limit is honoured between chunks.
    Several sets (N:M groups, each small): mixed-radix enumeration, digit ``t`` picks one of the
    ``C(|g_t|, c_t)`` subsets of set ``t``.
    """
    if len(row.groups) == 1:
        group, count = row.groups[0].tolist(), row.counts[0]
        subsets = itertools.combinations(group, count)
        while True:
            chunk = list(itertools.islice(subsets, CHUNK))
            if not chunk:
                return
            yield np.asarray(chunk, dtype=np.int64).reshape(len(chunk), count)
    local = [np.asarray(list(itertools.combinations(g.tolist(), c)), dtype=np.int64).reshape(-1, c)
             for g, c in zip(row.groups, row.counts)]
    radix = [len(x) for x in local]
    total = math.prod(radix)
    powers = np.cumprod([1] + radix[:-1]).astype(np.int64)
    for start in range(0, total, CHUNK):
        t = np.arange(start, min(total, start + CHUNK), dtype=np.int64)
        parts = [loc[(t // p) % r] for loc, p, r in zip(local, powers, radix)]
        yield np.concatenate(parts, axis=1)


def bruteforce_row(row: RowQP, time_limit: float | None, options: dict) -> RowOutcome:
    """Enumerate one row (normalised scale); see the module docstring."""
    t0 = time.perf_counter()
    best_v, best_idx, seen, timed_out = math.inf, None, 0, False
    for idx in _candidate_chunks(row):
        z = np.zeros((idx.shape[0], row.d))
        np.put_along_axis(z, idx, 1.0, axis=1)
        vals = np.einsum("cj,cj->c", z @ row.q, z)
        j = int(np.argmin(vals))
        if vals[j] < best_v:
            best_v, best_idx = float(vals[j]), idx[j]
        seen += idx.shape[0]
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            timed_out = True
            break
    z = np.zeros(row.d, dtype=bool)
    z[best_idx] = True
    done = seen >= subset_count([len(g) for g in row.groups], row.counts)
    return RowOutcome(z, best_v if done else 0.0, best_v, proved=done, timed_out=timed_out and not done,
                      nodes=0, solve_seconds=time.perf_counter() - t0)


@register_solver("bruteforce", "exact", "enumerate every feasible pruning set per row (small d only)",
                 uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"),
                 settings=exact_setting_types({"max_subsets": (int,)}))
def solve_bruteforce(problem, warm_start, time_limit, seed, **settings):
    """Settings: ``max_subsets`` (5e6), plus the common exact settings (see solvers.exact.row_pool)."""
    opts = exact_settings(settings, {"max_subsets": MAX_SUBSETS})
    pat = problem.pattern
    count = (subset_count([pat.m] * (problem.d_in // pat.m), [pat.pruned_per_group] * (problem.d_in // pat.m))
             if isinstance(pat, NM) else subset_count([problem.d_in], [problem.pruned_per_row]))
    if count > int(opts["max_subsets"]):
        return error_result("bruteforce", f"bruteforce refuses: {count:.3g} pruning sets per row "
                            f"({pat.describe()}, d_in={problem.d_in}) exceed max_subsets={opts['max_subsets']:.3g}; "
                            "raise max_subsets or use an exact search backend (sdpbb, highs, cbc)",
                            settings=opts)
    return solve_rows(problem, warm_start, "bruteforce", bruteforce_row, time_limit, opts)
