"""Shared instances for the exact-solver tests (small rows, brute-force checkable)."""

from __future__ import annotations

import torch

from solvers import MaskProblem, generate
from solvers.pattern import NM, PerRow


def synthetic_cases(d_in: int = 12, rows: int = 25, seeds=(0, 1)) -> list[MaskProblem]:
    """LLM-like rows (outlier channels, cond(G) ≥ 1e4, 15 % dead inputs), per-row and 2:4."""
    return [generate(family="tiny", d_in=d_in, d_out=rows, pattern=pat, seed=s, dead_fraction=0.15)
            for pat in ("per-row", "2:4") for s in seeds]


def adversarial_case(pattern=None) -> MaskProblem:
    """Hand-made G: a 1e3× outlier channel, a dead input, a duplicated channel with opposite weights."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(40, 12, generator=g, dtype=torch.float64)
    x[:, 3] *= 1e3            # outlier channel
    x[:, 5] = 0.0             # dead input: G_55 = 0
    x[:, 9] = x[:, 8]         # duplicated channel: G singular
    w = torch.randn(6, 12, generator=g, dtype=torch.float64)
    w[:, 9] = -w[:, 8]        # pruning both columns 8 and 9 cancels exactly
    w[0] = 0.0                # an all-zero row
    return MaskProblem.from_activations(w, x, pattern or PerRow(6))


def all_cases(rows: int = 25, seeds=(0, 1)) -> list[MaskProblem]:
    return synthetic_cases(rows=rows, seeds=seeds) + [adversarial_case(), adversarial_case(NM(2, 4))]
