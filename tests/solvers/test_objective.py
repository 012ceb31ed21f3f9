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
