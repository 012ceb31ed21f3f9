"""Top-k / N:M selection from scores (solvers.baselines.selection): tie order."""

from __future__ import annotations

import torch

from solvers import NM, PerRow
from solvers.baselines.selection import mask_from_scores


def test_ties_prune_lower_column_first():
    mask = mask_from_scores(torch.ones(2, 6), PerRow(2))
    assert mask.tolist() == [[False, False, True, True, True, True]] * 2
    mask = mask_from_scores(torch.ones(1, 8), NM(2, 4))
    assert mask.tolist() == [[False, False, True, True, False, False, True, True]]
