"""RIA (solvers.baselines.ria): the relative-importance score by its formula."""

from __future__ import annotations

import torch

from solvers.baselines.ria import ria_scores
from solvers.synthetic import generate


def test_ria_matches_the_formula():
    problem = generate(family="tiny", d_in=8, d_out=3, seed=0)
    w = problem.weight.abs()
    norms = torch.diagonal(problem.gram).sqrt()
    manual = (w / w.sum(0, keepdim=True) + w / w.sum(1, keepdim=True)) * norms.pow(0.5)
    assert torch.allclose(ria_scores(problem), manual, rtol=1e-12)
