"""Magnitude pruning, row-balanced.

Score ``S_ij = |W_ij|``; in each row (or each N:M group) the lowest scores are
pruned (stable tie-breaking by column). Ignores the calibration data entirely.
"""

from __future__ import annotations

from solvers.baselines.selection import mask_from_scores
from solvers.registration import register_solver
from solvers.result import make_result


def magnitude_scores(problem):
    return problem.weight.abs().to(dtype=problem.weight.dtype)


@register_solver("magnitude", "baseline", "prune the smallest |W_ij| per row / N:M group")
def solve_magnitude(problem, warm_start, time_limit, seed):
    mask = mask_from_scores(magnitude_scores(problem), problem.pattern)
    return make_result(problem, mask, "magnitude")
