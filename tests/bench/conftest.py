"""Fixtures of tests/bench: a small suite file and a store holding two identical runs of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import load_suite

SMALL_SUITE = """
name = "{name}"
[[instances]]
kind = "generated"
family = "tiny"
d_in = 12
d_out = 3
pattern = ["per-row", "2:4"]
seeds = {seeds}
[[solvers]]
name = "wanda"
[[solvers]]
name = "sparsegpt"
settings = {{ blocksize = 4 }}
[[solvers]]
name = "magnitude"
max_d_in = 8
"""


def _write_suite(tmp_path: Path, name="t", seeds="[0, 1]", extra: str = "") -> Path:
    """A suite file of tiny generated instances (2 patterns x ``seeds``) and 3 baseline configurations,
    followed by the TOML text ``extra``."""
    path = tmp_path / f"{name}.toml"
    path.write_text(SMALL_SUITE.format(name=name, seeds=seeds) + extra)
    return path


@pytest.fixture
def write_suite():
    """``write_suite(folder, name="t", seeds="[0, 1]", extra="") -> path`` of the small suite (8 tasks by default)."""
    return _write_suite


@pytest.fixture(scope="package")
def two_runs(tmp_path_factory):
    """``(folder, store, first run id, second run id)``: the small suite run twice (second forced)."""
    tmp = tmp_path_factory.mktemp("cmp")
    suite = load_suite(str(_write_suite(tmp)))
    store = ResultStore(tmp / "s.sqlite")
    first = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    second = run_suite(suite, store, workers=1, force=True, progress=False, log=lambda m: None)
    return tmp, store, first.run_id, second.run_id
