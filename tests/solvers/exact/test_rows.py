"""Rows as normalised binary QPs (solvers.exact.rows): values, trivial rows, the Schur reduction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from solvers import PerRow, generate, row_objectives, solve
from solvers.exact.rows import diagonal_start, reduce_row, row_problems


def test_trivial_rows_need_no_search():
    for k in (0, 12):
        problem = generate(family="tiny", d_in=12, d_out=3, seed=1).with_pattern(PerRow(k))
        res = solve("bruteforce", problem, warm_start="wanda", workers=1, max_subsets=1)
        assert res.status == "optimal"
        assert int((~res.mask).sum()) == 3 * k


def test_scaled_row_value_is_the_row_objective(synthetic_cases, adversarial_case):
    """``scale · zᵀqz`` of the pruned set is the float64 objective of that row, for every row."""
    for problem in [*synthetic_cases(rows=4, seeds=(0,)), adversarial_case()]:
        mask = solve("wanda", problem).mask
        expected = row_objectives(problem, mask)
        for row in row_problems(problem, mask):
            assert row.is_feasible(row.warm)
            size = row.scale * float(np.abs(row.q).sum())   # |terms| summed: a rounding scale
            assert row.scale * row.value(row.warm) == pytest.approx(float(expected[row.row]), rel=1e-9,
                                                                    abs=1e-12 * size + 1e-300)


def test_reduction_fixes_only_columns_no_better_solution_prunes(adversarial_case):
    """Every column that reduce_row fixes to kept is pruned only by sets worse than the start."""
    fixed_total = 0
    for row in row_problems(adversarial_case(PerRow(4)), None):
        if row.scale == 0.0:
            continue
        start_value = row.value(diagonal_start(row))
        _, kept, _ = reduce_row(row)
        fixed = sorted(set(range(row.d)) - set(kept.tolist()))
        fixed_total += len(fixed)
        sets = np.array([[j in s for j in range(row.d)] for s in itertools.combinations(range(row.d), row.k)],
                        dtype=np.float64)
        values = np.einsum("si,ij,sj->s", sets, row.q, sets)
        for j in fixed:
            assert values[sets[:, j] > 0].min() > start_value
    assert fixed_total > 0   # the outlier channel is fixed in at least one row


def test_row_problems_are_built_one_at_a_time():
    """Each row's d_in × d_in ``q`` is made when asked for, never all d_out of them at once."""
    from solvers import generate

    problem = generate(family="small", d_in=24, d_out=5, seed=3)
    rows = row_problems(problem, None)
    assert len(rows) == 5 and not any(isinstance(v, list) and v and hasattr(v[0], "q") for v in vars(rows).values())
    w = problem.weight.to(torch.float64).numpy()
    g = problem.gram.to(torch.float64).numpy()
    for i, row in enumerate(rows):
        q = g * w[i][:, None] * w[i][None, :]
        np.testing.assert_allclose(row.q * row.scale, 0.5 * (q + q.T), rtol=1e-12, atol=0)
        assert row.row == i
    assert rows[-1].row == 4
    with pytest.raises(IndexError):
        rows[5]
