"""Problems shared by the tests of several solvers (the exact backends have their own fixtures in
``exact/conftest.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from solvers import MaskProblem, generate
from solvers.pattern import NM, PerRow


def adversarial_problem(pattern) -> MaskProblem:
    """A 1e3× outlier channel, a dead input, a duplicated channel with opposite weights, a zero row."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(40, 12, generator=g, dtype=torch.float64)
    x[:, 3] *= 1e3
    x[:, 5] = 0.0
    x[:, 9] = x[:, 8]
    w = torch.randn(6, 12, generator=g, dtype=torch.float64)
    w[:, 9] = -w[:, 8]
    w[0] = 0.0
    return MaskProblem.from_activations(w, x, pattern)


SMALL_CASES = {
    **{f"tiny-{pat}-s{s}": (lambda pat=pat, s=s: generate(family="tiny", d_in=12, d_out=25, pattern=pat, seed=s,
                                                          dead_fraction=0.15))
       for pat in ("per-row", "2:4") for s in (0, 1)},
    "adversarial-per-row": lambda: adversarial_problem(PerRow(6)),
    "adversarial-2:4": lambda: adversarial_problem(NM(2, 4)),
}
"""Named builders: tiny synthetic instances with dead inputs (per-row and 2:4) and the adversarial one."""


def feasible_points(groups, counts, m: int):
    """Every binary ``z`` (numpy, length ``m``) with ``k_g`` ones in each group ``g``: brute force for row bounds."""
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(m)
        for part in pick:
            z[list(part)] = 1.0
        yield z
