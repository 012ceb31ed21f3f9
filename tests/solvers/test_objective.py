import pytest
import torch

from solvers import NM, MaskProblem, PerRow, objective, row_objectives
from solvers.objective import InfeasibleMaskError, check_feasible, residual_row_objectives


def _random_case(seed, d_out=7, d_in=24, tokens=50):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, d_in, generator=g, dtype=torch.float64)
    x[:, 3] *= 300.0  # an outlier channel
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    mask = torch.rand(d_out, d_in, generator=g) < 0.5
    return x, w, mask


@pytest.mark.parametrize("seed", range(5))
def test_objective_equals_naive_reconstruction_error(seed):
    x, w, mask = _random_case(seed)
    problem = MaskProblem.from_activations(w, x, PerRow(0))
    naive = float(((x @ w.T - x @ (mask * w).T) ** 2).sum())
    got = objective(problem, mask)
    assert abs(got - naive) <= 1e-10 * naive
    per_row = ((x @ w.T - x @ (mask * w).T) ** 2).sum(0)
    assert torch.allclose(row_objectives(problem, mask), per_row, rtol=1e-10, atol=0)


def test_chunking_does_not_change_the_value():
    x, w, mask = _random_case(11, d_out=9, d_in=40)
    problem = MaskProblem.from_activations(w, x, PerRow(0))
    full = row_objectives(problem, mask)
    chunked = row_objectives(problem, mask, row_chunk=2, col_chunk=7)
    assert torch.allclose(full, chunked, rtol=1e-12, atol=0)


def test_float32_inputs_are_evaluated_in_float64():
    x, w, mask = _random_case(3)
    p64 = MaskProblem.from_activations(w, x, PerRow(0))
    p32 = MaskProblem(p64.weight.float(), p64.gram.float(), PerRow(0))
    ref = residual_row_objectives(p32.gram.double(), (p32.weight.double() * ~mask))
    assert row_objectives(p32, mask).dtype == torch.float64
    assert torch.allclose(row_objectives(p32, mask), ref, rtol=1e-12, atol=0)


def test_feasibility_check_names_rows_and_pattern():
    x, w, _ = _random_case(0, d_in=8)
    problem = MaskProblem.from_activations(w, x, NM(2, 4))
    good = torch.tensor([[1, 1, 0, 0, 0, 1, 0, 1]] * w.shape[0], dtype=torch.bool)
    check_feasible(problem, good)
    bad = good.clone()
    bad[2, 0] = False
    with pytest.raises(InfeasibleMaskError, match="2:4.*row 2"):
        check_feasible(problem, bad)
    with pytest.raises(InfeasibleMaskError, match="shape"):
        check_feasible(problem, good[:, :4])
    with pytest.raises(InfeasibleMaskError, match="0 or 1"):
        check_feasible(problem, good.to(torch.int64) * 2)


def _tokens_problem(tokens: int, d_in: int = 40, d_out: int = 7, seed: int = 0):
    from solvers.problem import GramAccumulator

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, d_in, generator=g, dtype=torch.float64) * torch.exp(torch.randn(d_in, generator=g,
                                                                                          dtype=torch.float64))
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    acc = GramAccumulator(d_in, chunk_tokens=8)                           # several updates, several kept chunks
    acc.update(x)
    return acc.problem(w, PerRow(d_in // 2)), x


@pytest.mark.parametrize("row_chunk, col_chunk", [(1024, 2048), (3, 7), (2, 1)])
def test_symmetric_and_token_forms_equal_the_plain_quadratic_form(row_chunk, col_chunk):
    from solvers.objective import factor_row_objectives

    problem, x = _tokens_problem(tokens=20)                              # 20 <= 40/2: the tokens are kept
    assert problem.gram_factor is not None and torch.equal(problem.gram_factor, x)
    mask = torch.rand(problem.d_out, problem.d_in, generator=torch.Generator().manual_seed(1)) < 0.5
    r = torch.where(mask, 0.0, problem.weight)
    plain = torch.einsum("ij,jk,ik->i", r, problem.gram, r)
    direct = ((r @ x.T) ** 2).sum(1)
    torch.testing.assert_close(residual_row_objectives(problem.gram, r, row_chunk, col_chunk), plain,
                               rtol=1e-12, atol=0)
    torch.testing.assert_close(factor_row_objectives(problem.gram_factor, r, row_chunk, token_chunk=col_chunk),
                               direct, rtol=1e-12, atol=0)
    torch.testing.assert_close(row_objectives(problem, mask), plain, rtol=1e-10, atol=0)  # through the tokens


def test_tokens_are_kept_only_while_few():
    many, _ = _tokens_problem(tokens=21)                                 # 21 > 40/2: dropped
    assert many.gram_factor is None
    few, _ = _tokens_problem(tokens=20)
    assert few.with_pattern(NM(2, 4)).gram_factor is few.gram_factor
    crop = few.crop([0, 2], list(range(0, 40, 2)))
    mask = torch.zeros(2, 20, dtype=torch.bool)
    r = crop.weight
    torch.testing.assert_close(row_objectives(crop, mask), torch.einsum("ij,jk,ik->i", r, crop.gram, r),
                               rtol=1e-10, atol=0)


def test_a_factor_that_is_not_one_is_refused():
    from solvers.errors import ProblemError

    problem, x = _tokens_problem(tokens=20)
    with pytest.raises(ProblemError, match="gram_factor"):
        MaskProblem(problem.weight, problem.gram, problem.pattern, gram_factor=x * 1.01)
    with pytest.raises(ProblemError, match="gram_factor must have shape"):
        MaskProblem(problem.weight, problem.gram, problem.pattern, gram_factor=x[:, :5])
    MaskProblem(problem.weight, problem.gram, problem.pattern, gram_factor=x.to(torch.float32))  # rounding passes
