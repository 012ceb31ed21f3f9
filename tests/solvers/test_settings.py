"""Solver settings are checked before any work: unknown keys name the accepted ones and the closest
match, values of the wrong type name the expected type, ints are taken for floats."""

from __future__ import annotations

import pytest

import solvers
from solvers.errors import MaskbenchError, SettingsError
from solvers.registry import accepted_settings, validate_settings
from solvers.settings import check_settings, coerce, signature_settings


@pytest.fixture(scope="module")
def problem():
    return solvers.generate(family="tiny", d_in=16, d_out=4, seed=0)


def test_unknown_setting_suggests_the_closest_and_lists_all(problem):
    with pytest.raises(SettingsError) as info:
        solvers.solve("swap", problem, warm_start="wanda", max_iter=100)
    text = str(info.value)
    assert "'max_iter'" in text and "did you mean 'max_iters'" in text and "refresh_every" in text
    assert isinstance(info.value, MaskbenchError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("solver,key,value,expected", [
    ("swap", "tol", "abc", "a number"), ("swap", "refresh_every", "abc", "an integer"),
    ("swap", "certify", 1, "true/false"), ("dsnot", "max_cycles", 2.5, "an integer"),
    ("sdpbb", "node_limit", "many", "an integer or null"), ("bruteforce", "workers", "two", "an integer"),
])
def test_wrong_types_are_refused_with_the_expected_type(problem, solver, key, value, expected):
    with pytest.raises(SettingsError, match=expected):
        validate_settings(solver, {key: value})


def test_exact_backends_declare_their_settings(problem):
    assert {"node_limit", "workers", "row_time_limit", "gap_tol"} <= set(accepted_settings("sdpbb"))
    with pytest.raises(SettingsError, match="did you mean 'node_limit'"):
        solvers.solve("sdpbb", problem, node_limt=3)


def test_chains_validate_the_last_solver_and_coerce(problem):
    assert validate_settings("wanda+swap", {"tol": 0, "max_iters": 5.0}) == {"tol": 0.0, "max_iters": 5}
    assert isinstance(validate_settings("wanda+swap", {"tol": 0})["tol"], float)
    result = solvers.solve("wanda+swap", problem, max_iters=3.0)
    assert result.settings["max_iters"] == 3


def test_signature_settings_reads_annotations_and_defaults():
    def fn(problem, warm_start, time_limit, seed, a: float = 0.5, b: int | None = None, c="x"):
        return None

    def var(problem, warm_start, time_limit, seed, **settings):
        return None

    assert signature_settings(fn) == {"a": (float,), "b": (int, type(None)), "c": (str,)}
    assert signature_settings(var) is None
    assert check_settings("var", None, {"anything": 1}) == {"anything": 1}
    assert coerce("s", "k", None, (int, type(None))) is None
    with pytest.raises(SettingsError):
        coerce("s", "k", True, (int,))  # a bool is not a count


def test_unknown_solver_suggests_the_closest():
    with pytest.raises(solvers.UnknownSolverError, match="did you mean 'wanda'"):
        solvers.get_solver("wandaa")
