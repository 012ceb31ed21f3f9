"""What is particular to the HiGHS backend: its default warm start and its formulation setting.

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
