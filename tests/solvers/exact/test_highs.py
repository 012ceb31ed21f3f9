"""What is particular to the HiGHS backend: its default warm start, its formulation setting, no banner on stdout.

The contract it shares with every exact backend is in ``test_backend_contract.py``.
"""

from __future__ import annotations

import pytest

from solvers import generate, solve


def test_default_warm_start_is_used():
    problem = generate(family="tiny", d_in=8, d_out=2, seed=0)
    res = solve("highs", problem, workers=1)
    assert res.warm_start in ("wanda+swap", "wanda")
    assert res.objective <= res.warm_start_objective * (1 + 1e-12)


def test_unknown_formulation_is_refused():
    problem = generate(family="tiny", d_in=8, d_out=1, seed=0)
    with pytest.raises(ValueError, match="formulation"):
        solve("highs", problem, warm_start="wanda", formulation="nope")


def test_banner_stays_off_stdout(cli, tmp_path):
    """HiGHS 1.16 prints a banner from C when a process builds its first solver; a command's stdout
    (here the per-row table of ``solve`` without ``--json``) must not carry it."""
    instance = tmp_path / "row.safetensors"
    cli("generate", "--family", "tiny", "--d-in", "8", "--d-out", "2", "--out", instance, check=True)
    proc = cli("solve", instance, "--solver", "highs", check=True)
    assert "HiGHS" not in proc.stdout and "Copyright" not in proc.stdout
    assert "highs" in proc.stdout  # the command's own output is still there
