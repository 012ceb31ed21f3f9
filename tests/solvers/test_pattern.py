"""Sparsity patterns (solvers.pattern): the rules they enforce, parsing, metadata, feasibility."""

from __future__ import annotations

import pytest
import torch

from solvers import NM, MaskProblem, PatternError, PerRow, parse_pattern
from solvers.pattern import pattern_from_metadata, per_row_k


@pytest.mark.parametrize("pattern, message", [
    (PerRow(9), r"k=9 is outside \[0, d_in=8\]"),
    (PerRow(-1), "outside"),
    (NM(2, 3), "M=3 does not divide d_in=8"),
    (NM(0, 4), r"N=0 is outside \[1, M=4\]"),
    (NM(5, 4), "N=5 is outside"),
])
def test_problem_refuses_a_pattern_that_does_not_fit(pattern, message):
    with pytest.raises(PatternError, match=message):
        MaskProblem(torch.randn(3, 8), torch.eye(8, dtype=torch.float64), pattern)


def test_parse_pattern():
    assert parse_pattern("2:4") == NM(2, 4)
    assert parse_pattern("per-row", d_in=10, sparsity=0.6) == PerRow(6)
    with pytest.raises(PatternError):
        parse_pattern("half")


@pytest.mark.parametrize("pattern", [PerRow(0), PerRow(7), NM(2, 4), NM(1, 8)], ids=str)
def test_metadata_round_trip(pattern):
    meta = pattern.to_metadata()
    assert all(isinstance(v, str) for v in meta.values())
    assert pattern_from_metadata(meta) == pattern


@pytest.mark.parametrize("meta, message", [
    ({"pattern": "per-row"}, "lacks 'k'"),
    ({"pattern": "n:m", "n": "2", "m": "four"}, "plain integer"),
    ({"pattern": "per-row", "k": " 16 "}, "plain integer"),
    ({"pattern": "per-row", "k": "1_6"}, "plain integer"),
    ({"pattern": "per-row", "k": "+16"}, "plain integer"),
    ({"pattern": "n:m", "n": "2", "m": "4.0"}, "plain integer"),
    ({"pattern": "blocks"}, "unknown pattern kind 'blocks'"),
    ({}, "unknown pattern kind None"),
])
def test_bad_metadata_is_refused(meta, message):
    with pytest.raises(PatternError, match=message):
        pattern_from_metadata(meta)


def test_per_row_k_rounds_and_checks_the_range():
    assert per_row_k(10, 0.55) == 6 and per_row_k(10, 0.0) == 0 and per_row_k(10, 1.0) == 10
    with pytest.raises(PatternError, match="outside"):
        per_row_k(10, 1.5)


def test_is_feasible_counts_per_row_and_per_group():
    mask = torch.tensor([[True, True, False, False, True, False, True, False],
                         [True, True, True, False, False, False, False, True]])
    assert PerRow(4).is_feasible(mask).tolist() == [True, True]
    assert PerRow(3).is_feasible(mask).tolist() == [False, False]
    assert NM(2, 4).is_feasible(mask).tolist() == [True, False]    # row 1 keeps 3 of its first 4
    assert NM(2, 3).is_feasible(mask).tolist() == [False, False]   # M does not divide d_in
