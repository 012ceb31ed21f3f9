"""Solver ``random``: a seeded, uniformly random feasible mask (per row, or per N:M group).

The floor of the benchmark: any method whose layer error is not far below this one's learns
nothing from the weights or the calibration data. Scores are i.i.d. uniform draws from
``torch.Generator().manual_seed(seed)``, turned into a mask by maskbench's own selection rule,
so the mask is feasible for every pattern and the same seed gives the same mask.
"""

from __future__ import annotations

import torch

from solvers.baselines.selection import mask_from_scores
from solvers.registration import register_solver
from solvers.result import make_result


@register_solver("random", "baseline", "seeded uniformly random feasible mask (the floor to beat)")
def solve_random(problem, warm_start, time_limit, seed):
    generator = torch.Generator().manual_seed(int(seed))
    scores = torch.rand(problem.d_out, problem.d_in, generator=generator, dtype=torch.float64)
    return make_result(problem, mask_from_scores(scores, problem.pattern), "random")
