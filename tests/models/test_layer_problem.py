"""The in-place problem build equals GramAccumulator.problem bit for bit, and refuses what it refuses."""

from __future__ import annotations

import pytest
import torch

from models.layer_problem import consume_into_problem, mirror_upper_in_place
from solvers.errors import ProblemError
from solvers.pattern import PerRow
from solvers.problem import GramAccumulator


def _accumulator(d_in: int, seed: int) -> GramAccumulator:
    g = torch.Generator().manual_seed(seed)
    acc = GramAccumulator(d_in)
    for _ in range(3):
        acc.update(torch.randn(2, 7, d_in, generator=g) * torch.exp(torch.randn(d_in, generator=g)))
    return acc


@pytest.mark.parametrize("d_in", [5, 64, 130])
def test_equals_the_accumulators_problem(d_in):
    weight = torch.randn(9, d_in, generator=torch.Generator().manual_seed(1))
    pattern = PerRow(d_in // 2)
    expected = _accumulator(d_in, 0).problem(weight, pattern, metadata={"layer": "x"})
    got = consume_into_problem(_accumulator(d_in, 0), weight, pattern, {"layer": "x"})
    assert torch.equal(got.gram, expected.gram) and torch.equal(got.weight, expected.weight)
    assert torch.equal(got.input_mean, expected.input_mean) and torch.equal(got.input_var, expected.input_var)
    assert got.metadata == expected.metadata and got.instance_id() == expected.instance_id()
    # the tokens go with the problem while few (42 tokens ≤ half of d_in = 130), so masks are verified through them
    assert (got.gram_factor is None) == (expected.gram_factor is None) == (d_in < 84)
    if got.gram_factor is not None:
        assert torch.equal(got.gram_factor, expected.gram_factor)


def test_half_precision_tokens_become_float32_factor():
    acc = GramAccumulator(100)
    x = torch.randn(1, 30, 100).to(torch.float16)
    acc.update(x)
    problem = consume_into_problem(acc, torch.randn(4, 100), PerRow(50))
    assert problem.gram_factor.dtype == torch.float32 and torch.equal(problem.gram_factor, x.reshape(30, 100).float())


def test_mirror_in_blocks_smaller_than_the_matrix():
    upper = torch.randn(11, 11, dtype=torch.float64).triu()
    full = upper + upper.triu(1).T
    assert torch.equal(mirror_upper_in_place(upper.clone() + torch.randn(11, 11).tril(-1), block=4), full)


def test_refuses_a_non_finite_weight_and_an_empty_accumulator():
    weight = torch.ones(3, 8)
    weight[1, 2] = float("nan")
    with pytest.raises(ProblemError, match="non-finite"):
        consume_into_problem(_accumulator(8, 0), weight, PerRow(4))
    with pytest.raises(ProblemError, match="no tokens"):
        consume_into_problem(GramAccumulator(8), torch.ones(3, 8), PerRow(4))
