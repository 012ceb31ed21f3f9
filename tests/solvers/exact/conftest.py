"""Shared instances for the exact-solver tests (small rows, brute-force checkable).

Each fixture returns a builder, so a test picks the rows, seeds or pattern it needs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from solvers import MaskProblem, generate
from solvers.pattern import NM, PerRow


def _synthetic_cases(d_in: int = 12, rows: int = 25, seeds=(0, 1)) -> list[MaskProblem]:
    """LLM-like rows (outlier channels, cond(G) ≥ 1e4, 15 % dead inputs), per-row and 2:4."""
    return [generate(family="tiny", d_in=d_in, d_out=rows, pattern=pat, seed=s, dead_fraction=0.15)
            for pat in ("per-row", "2:4") for s in seeds]


def _adversarial_case(pattern=None) -> MaskProblem:
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


def _all_cases(rows: int = 25, seeds=(0, 1)) -> list[MaskProblem]:
    """The synthetic cases plus the adversarial one, per-row and 2:4."""
    return _synthetic_cases(rows=rows, seeds=seeds) + [_adversarial_case(), _adversarial_case(NM(2, 4))]


def _random_node(seed: int, d: int, nm: bool):
    """An ill-conditioned PSD q (outlier channel, a dead input, duplicated columns) with a linear term.

    Returns ``(q, c, groups, counts)``: groups of 4 keeping 2 (``nm``) or one group pruning d/2.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3 * d, d))
    x[:, 0] *= 30.0
    x[:, 1] = 0.0
    x[:, 3] = x[:, 2]
    w = rng.standard_normal(d)
    q = (x.T @ x) * np.outer(w, w)
    q /= np.mean(np.diag(q))
    c = rng.standard_normal(d) * (seed % 2)
    if nm:
        groups = [np.arange(s, s + 4) for s in range(0, d, 4)]
        counts = [2] * len(groups)
    else:
        groups, counts = [np.arange(d)], [d // 2]
    return q, c, groups, counts


def _brute_node(q: np.ndarray, c: np.ndarray, groups, counts) -> float:
    """min zᵀqz + 2cᵀz over the 0/1 vectors with the group sums, by enumeration."""
    best = np.inf
    choices = [list(itertools.combinations(g.tolist(), k)) for g, k in zip(groups, counts)]
    for pick in itertools.product(*choices):
        z = np.zeros(q.shape[0])
        for p in pick:
            z[list(p)] = 1.0
        best = min(best, z @ q @ z + 2 * c @ z)
    return best


@pytest.fixture
def synthetic_cases():
    """Builder ``(d_in=12, rows=25, seeds=(0, 1)) -> [MaskProblem]``, per-row and 2:4 for each seed."""
    return _synthetic_cases


@pytest.fixture
def adversarial_case():
    """Builder ``(pattern=PerRow(6)) -> MaskProblem`` of the hand-made ill-conditioned instance."""
    return _adversarial_case


@pytest.fixture(scope="module")
def all_cases():
    """Builder ``(rows=25, seeds=(0, 1)) -> [MaskProblem]``: synthetic and adversarial cases."""
    return _all_cases


@pytest.fixture
def random_node():
    """Builder ``(seed, d, nm) -> (q, c, groups, counts)`` of one branch-and-bound node."""
    return _random_node


@pytest.fixture
def brute_node():
    """``(q, c, groups, counts) -> float``: a node's optimum by enumeration."""
    return _brute_node
