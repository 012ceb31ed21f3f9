"""Row selections of the bound (solvers.exact.row_selection): all rows, a seeded sample, a range."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.exact.row_selection import sample_rows, select_rows


def test_forms_and_labels():
    every = select_rows(None, 10)
    assert every.everything and not every.sample and torch.equal(every.rows, torch.arange(10))
    sample = select_rows("4", 10, seed=3)
    assert sample.sample and not sample.everything and len(sample.rows) == 4 and "seed 3" in sample.label
    assert torch.equal(sample.rows, sample_rows(10, 4, 3)) and torch.equal(sample.rows, torch.sort(sample.rows).values)
    assert len(set(sample.rows.tolist())) == 4
    part = select_rows("2:5", 10)
    assert torch.equal(part.rows, torch.tensor([2, 3, 4])) and not part.sample and not part.everything
    assert torch.equal(select_rows(":3", 10).rows, torch.arange(3))
    assert torch.equal(select_rows("8:", 10).rows, torch.tensor([8, 9]))
    assert select_rows("0:10", 10).everything and select_rows("10", 10).everything


@pytest.mark.parametrize("spec", ["5:2", "3:3", "0:11", "11", "0", "-1", "a", "1:2:3", True, "1.5"])
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError):
        select_rows(spec, 10)


def test_the_solver_bounds_only_the_selected_rows():
    problem = solvers.generate(family="small", d_in=24, d_out=6, seed=2)
    start = solvers.solve("wanda+swap", problem)
    full = solvers.solve("bound", problem, start, workers=1)
    part = solvers.solve("bound", problem, start, workers=1, rows="1:4")
    assert torch.equal(part.mask, start.mask) and part.objective == start.objective
    assert torch.allclose(part.row_lower_bounds[1:4], full.row_lower_bounds[1:4], rtol=1e-9, atol=1e-12)
    assert bool((part.row_lower_bounds[[0, 4, 5]] == 0).all()) and part.row_lower_bounds[1:4].min() > 0
    assert part.extra["rows"] == [1, 2, 3] and part.extra["sample"] is False and "rows 1:4" in part.extra["selection"]
    drawn = solvers.solve("bound", problem, start, workers=1, rows=2, seed=7)
    assert drawn.extra["sample"] is True and drawn.extra["rows"] == sample_rows(6, 2, 7).tolist()
    with pytest.raises(ValueError):
        solvers.solve("bound", problem, start, workers=1, rows="4:9")
