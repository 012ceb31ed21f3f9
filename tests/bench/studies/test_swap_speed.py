"""bench/studies/swap_speed.py: one instance's figures are sane, a bad input is one line."""

from __future__ import annotations

import pytest

import solvers
from bench.studies import swap_speed


def test_run_one_reports_ratios_and_the_solvers_sweeps():
    problem = solvers.generate(family="layer", d_in=160, d_out=48, seed=0, sparsity=0.5)
    r = swap_speed.run_one("layer 48x160", problem, "auto", "cpu")
    assert r["gemm_ms"] > 0
    for key in ("sweep_warm_ratio", "sweep_conv_ratio", "iter_mean_ratio", "solve_per_sweep_ratio"):
        assert r[key] > 0
    assert r["sweeps"] >= 1 and r["status"] == "feasible"
    wanda = solvers.solve("wanda", problem)
    swap = solvers.solve("swap", problem, warm_start=wanda)
    assert r["sweeps"] == swap.extra["search_iterations"]
    assert r["reduction"] == pytest.approx(1 - swap.objective / wanda.objective, rel=1e-12)


def test_missing_instance_file_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        swap_speed.main(["--instances", str(tmp_path / "absent.safetensors")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("maskbench: error: instance file not found") and "\n" not in err
