"""bench.studies.solver_memory on a tiny shape: each solver runs in its own process and reports memory."""

from __future__ import annotations

import pytest

from bench.studies import solver_memory


@pytest.mark.parametrize("name", ["sparsegpt-update", "refit", "bound", "swap-float64"])
def test_run_one_reports_memory_and_a_value(name):
    r = solver_memory.run_one(name, "8x64", tokens=16, time_limit=5.0, bound_rows=1, refit_iters=2)
    assert r["peak_MB"] >= r["base_MB"] > 0 and r["factor"] is True
    assert r["value"] is not None and r["value"] >= 0


def test_main_runs_each_solver_in_a_subprocess(capsys):
    assert solver_memory.main(["--shape", "8x64", "--tokens", "16", "--solvers", "wanda,verify"]) == 0
    out = capsys.readouterr().out
    assert "wanda" in out and "verify" in out and "FAILED" not in out
