"""Rows as normalised binary QPs (solvers.exact.rows): values, trivial rows, the Schur reduction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

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
