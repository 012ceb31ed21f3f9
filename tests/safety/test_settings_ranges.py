"""Issue 34, part 3: settings are range-checked before solving; lns cannot be sized past its time limit."""

from __future__ import annotations

import pytest

from solvers import generate, solve
from solvers.errors import SettingsError
from solvers.registry import validate_settings
from solvers.synthetic import SyntheticSpec
from tests.safety.helpers import assert_one_line_error, call


@pytest.mark.parametrize("solver, settings, words", [
    ("swap", {"max_iters": -1}, ">= 0"),
    ("swap", {"memory_budget_mb": -5.0}, ">= 0"),
    ("swap", {"memory_budget_mb": float("inf")}, "finite"),
    ("swap", {"tol": float("nan")}, "finite"),
    ("lns", {"phases": 10_000_000}, "between 1 and 1000"),
    ("lns", {"steps": -3}, "between 0"),
    ("dsnot", {"max_cycles": -1}, ">= 0"),
    ("sparsegpt", {"blocksize": -4}, ">= 0"),
    ("highs", {"gap_tol": -1.0}, ">= 0"),
])
def test_out_of_range_settings_are_refused_before_solving(solver, settings, words):
    from solvers.registry import accepted_settings

    key = next(iter(settings))
    accepted = accepted_settings(solver)
    if accepted is not None and key not in accepted:
        pytest.skip(f"{solver} has no setting {key}")
    with pytest.raises(SettingsError, match=words):
        validate_settings(solver, settings)
    problem = generate(SyntheticSpec(family="tiny", d_in=8, d_out=2, seed=0))
    with pytest.raises(SettingsError):
        solve(solver, problem, **settings)


def test_in_range_settings_still_pass():
    assert validate_settings("lns", {"phases": 1000, "steps": 0}) == {"phases": 1000, "steps": 0}
    assert validate_settings("swap", {"max_iters": 0, "memory_budget_mb": 1}) == {"max_iters": 0,
                                                                                   "memory_budget_mb": 1.0}


def test_cli_lns_huge_phases_is_one_line(tmp_path, capsys):
    inst = tmp_path / "i.safetensors"
    assert call(capsys, "generate", "--family", "tiny", "--d-in", "8", "--d-out", "2", "-o", inst)[0] == 0
    code, _, err = call(capsys, "solve", inst, "--solver", "lns", "--set", "phases=10000000", "--time-limit", "1")
    assert_one_line_error(code, err, "phases", "1000")
