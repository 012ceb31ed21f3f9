"""The problem (solvers.problem): validation naming the fault, Gram accumulation, crops, instance ids."""

import math

import numpy as np
import pytest
import torch

from solvers import NM, GramAccumulator, MaskProblem, PatternError, PerRow, ProblemError
from solvers.synthetic import generate


def _psd(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * d, d, generator=g, dtype=torch.float64)
    return x.T @ x


def test_valid_problem_and_properties():
    p = MaskProblem(torch.randn(3, 8), _psd(8), PerRow(4))
    assert (p.d_out, p.d_in, p.pruned_per_row, p.sparsity) == (3, 8, 4, 0.5)
    assert MaskProblem(np.ones((2, 8)), _psd(8).numpy(), NM(2, 4)).pruned_per_row == 4


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight=torch.randn(3), gram=_psd(8), pattern=PerRow(1)), "weight must be 2-D"),
    (dict(weight=torch.randn(3, 8), gram=torch.randn(8, 7), pattern=PerRow(1)), "gram must be square"),
    (dict(weight=torch.randn(3, 8), gram=_psd(6), pattern=PerRow(1)), "d_in=8"),
    (dict(weight=torch.full((3, 8), math.nan), gram=_psd(8), pattern=PerRow(1)), "weight contains .* non-finite"),
    (dict(weight=torch.randn(3, 8), gram=_psd(8) * math.inf, pattern=PerRow(1)), "gram contains .* non-finite"),
    (dict(weight=torch.randn(3, 8), gram=_psd(8) + torch.triu(torch.ones(8, 8), 1), pattern=PerRow(1)),
     "not symmetric"),
    (dict(weight=torch.randn(3, 8), gram=-_psd(8), pattern=PerRow(1)), "not positive semidefinite"),
    # positive diagonal, symmetric, but eigenvalue -1 (7-fold): not PSD
    (dict(weight=torch.randn(3, 8), gram=2 * torch.ones(8, 8, dtype=torch.float64) - torch.eye(8, dtype=torch.float64),
          pattern=PerRow(1)), "not positive semidefinite: smallest eigenvalue -1"),
    (dict(weight=torch.randn(3, 8), gram=_psd(8), pattern=PerRow(1), input_mean=torch.zeros(5)), "input_mean"),
])
def test_invalid_inputs_raise_naming_the_problem(kwargs, message):
    with pytest.raises((ProblemError, PatternError), match=message):
        MaskProblem(**kwargs)


def test_dead_inputs_are_legal():
    g = _psd(8)
    g[2, :] = 0
    g[:, 2] = 0
    p = MaskProblem(torch.randn(2, 8), g, PerRow(3))
    assert p.gram[2, 2] == 0


def test_integer_arrays_rejected_with_dtype_in_message():
    with pytest.raises(ProblemError, match="floating-point"):
        MaskProblem(np.ones((2, 4), dtype=np.int64), _psd(4), PerRow(1))


def test_gram_accumulator_streams_equal_one_shot():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 13, 6, generator=g)
    acc = GramAccumulator(6, chunk_tokens=7)
    for batch in x:
        acc.update(batch)
    flat = x.reshape(-1, 6).double()
    assert acc.tokens == 65
    assert torch.allclose(acc.gram, flat.T @ flat, rtol=1e-12)
    assert torch.allclose(acc.mean, flat.mean(0), rtol=1e-12)
    assert torch.allclose(acc.var, flat.var(0, unbiased=False), rtol=1e-10)
    p = acc.problem(torch.randn(2, 6), PerRow(2), metadata={"layer": "x"})
    assert p.metadata["layer"] == "x" and p.input_var is not None
    with pytest.raises(ProblemError, match="last dimension"):
        acc.update(torch.randn(4, 5))


@pytest.mark.parametrize("d_in", [1, 3, 6, 13])
def test_gram_accumulator_upper_triangle_gives_exactly_symmetric_gram(d_in):
    """Only the upper triangle is accumulated (in column blocks); the lower one is its mirror."""
    x = torch.randn(50, d_in, generator=torch.Generator().manual_seed(d_in))
    acc = GramAccumulator(d_in)
    acc.update(x)
    assert torch.equal(acc.gram, acc.gram.T)
    x64 = x.double()
    torch.testing.assert_close(acc.gram, x64.T @ x64, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(acc.var, x64.var(0, unbiased=False), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_gram_accumulator_refuses_non_finite_activations(bad):
    x = torch.randn(9, 5)
    x[4, 3] = bad
    with pytest.raises(ProblemError, match="non-finite"):
        GramAccumulator(5).update(x)


def test_crop_matches_sub_blocks():
    p = generate(family="small", d_in=32, d_out=6, seed=0)
    q = p.crop([1, 4], [0, 3, 5, 7], PerRow(2))
    assert torch.equal(q.gram, p.gram[[0, 3, 5, 7]][:, [0, 3, 5, 7]])
    assert torch.equal(q.weight, p.weight[[1, 4]][:, [0, 3, 5, 7]])


def test_instance_id_ignores_provenance():
    p = generate(family="tiny", seed=0)
    q = type(p)(p.weight, p.gram, p.pattern, metadata={"model": "other"})
    assert p.instance_id() == q.instance_id()
    assert p.instance_id() != p.with_pattern(NM(2, 4)).instance_id()


@pytest.mark.parametrize("w_scale,g_scale", [(1e-300, 1.0), (1.0, 1e-300), (1e160, 1.0)])
def test_objective_scale_outside_float64_is_refused(w_scale, g_scale):
    """Near 1e-300 every loss term underflows to 0 and every mask looked optimal with objective 0."""
    w = torch.randn(3, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * w_scale
    with pytest.raises(ProblemError, match="rescale"):
        MaskProblem(w, _psd(8) * g_scale, PerRow(4))
    MaskProblem(w / w_scale, _psd(8), PerRow(4))  # the same data at a sane scale is fine


def test_accumulated_gram_skips_only_the_cholesky_test(monkeypatch):
    """G = Σ x xᵀ is PSD by construction: the accumulator's problems skip the (costly) Cholesky
    test, every other check still runs, and problems built directly still take the test."""
    torch.manual_seed(0)
    acc = GramAccumulator(6)
    acc.update(torch.randn(40, 6))
    calls = []
    real = torch.linalg.cholesky_ex
    monkeypatch.setattr(torch.linalg, "cholesky_ex", lambda *a, **k: calls.append(1) or real(*a, **k))
    p = acc.problem(torch.randn(3, 6), PerRow(3))
    assert calls == []
    MaskProblem(p.weight, p.gram, p.pattern)
    assert calls == [1]
    with pytest.raises(ProblemError, match="non-finite"):
        acc.problem(torch.full((3, 6), float("nan")), PerRow(3))
    with pytest.raises(PatternError):
        acc.problem(torch.randn(3, 6), PerRow(7))
