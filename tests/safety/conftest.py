"""Fixtures of the safety tests: a small store and a tiny instance file (session-wide, read-only)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """A store with one run of the small suite (tiny generated instances, three baselines)."""
    from bench.runner import run_suite
    from bench.store import ResultStore
    from bench.suites import load_suite
    from tests.bench.conftest import _write_suite

    tmp = tmp_path_factory.mktemp("store")
    path = tmp / "s.sqlite"
    run_suite(load_suite(str(_write_suite(tmp))), ResultStore(path), workers=1, progress=False, log=lambda m: None)
    return path


@pytest.fixture(scope="session")
def instance(tmp_path_factory):
    from solvers import generate, save_instance
    from solvers.synthetic import SyntheticSpec

    path = tmp_path_factory.mktemp("inst") / "i.safetensors"
    save_instance(generate(SyntheticSpec(family="tiny", d_in=8, d_out=2, seed=0)), path)
    return path
