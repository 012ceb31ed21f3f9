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


def _stable_sort_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: prune the first ``k`` of each row's stable ascending order."""
    order = torch.sort(scores.to(torch.float64), dim=1, stable=True).indices
    mask = torch.ones(scores.shape, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], False)
    return mask


def test_per_row_selection_equals_the_stable_sort_with_many_ties():
    """Scores drawn from a few values (ties everywhere, also across the k-th place), every k."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (40, 13), generator=g).to(torch.float32) * 0.5
    scores[0] = 1.0  # one row all tied
    for k in range(14):
        assert torch.equal(mask_from_scores(scores, PerRow(k)), _stable_sort_mask(scores, k)), k
    real = torch.rand(30, 200, generator=g, dtype=torch.float64)
    assert torch.equal(mask_from_scores(real, PerRow(100)), _stable_sort_mask(real, 100))


def test_blocks_of_rows_give_the_whole_layer_selection():
    """Selection by blocks of rows (any block size, also 1 row and uneven last blocks) equals the
    reference stable sort per row and the N:M selection of the whole layer; non-finite scores in a
    late block are still refused."""
    import pytest

    from solvers.baselines.selection import mask_from_row_scores

    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 5, (23, 16), generator=g).to(torch.float64)
    for pattern, reference in ((PerRow(7), _stable_sort_mask(scores, 7)),
                               (NM(2, 4), mask_from_scores(scores, NM(2, 4)))):
        calls = []

        def rows_of(rows, calls=calls):
            calls.append(rows)
            return scores[rows]

        for chunk in (1, 16, 5 * 16, 23 * 16, 10_000):
            calls.clear()
            mask = mask_from_row_scores(rows_of, 23, 16, pattern, chunk_elements=chunk)
            assert torch.equal(mask, reference), (pattern, chunk)
            assert len(calls) == -(-23 // max(1, chunk // 16))
    bad = scores.clone()
    bad[22, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        mask_from_row_scores(lambda rows: bad[rows], 23, 16, PerRow(7), chunk_elements=16)


def test_huge_finite_scores_are_accepted_and_infinite_ones_refused():
    """The finiteness test reads the sum first; a sum that overflows must not refuse finite scores."""
    import pytest

    scores = torch.tensor([[1e308, 1e308, 1.0, 2.0]], dtype=torch.float64)
    assert mask_from_scores(scores, PerRow(2)).tolist() == [[True, True, False, False]]
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="non-finite"):
            mask_from_scores(torch.tensor([[1.0, bad, 2.0, 3.0]]), PerRow(2))
