"""Magnitude pruning (solvers.baselines.magnitude): the smallest |w| of each row go."""

from __future__ import annotations

import torch

from solvers import MaskProblem, PerRow, solve


def test_magnitude_prunes_smallest_absolute_weights():
    w = torch.tensor([[0.5, -3.0, 0.1, 2.0], [-0.2, 0.3, -4.0, 1.0]])
    problem = MaskProblem(w, torch.eye(4, dtype=torch.float64), PerRow(2))
    assert solve("magnitude", problem).mask.tolist() == [[False, True, False, True], [False, False, True, True]]
