"""DSnoT refiner: feasibility, the released code's update rules, clear errors."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem
from solvers.refiners.dsnot import MissingStatisticsError, dsnot_mask


def _problem(pattern: str = "per-row", shift: float = 0.5, seed: int = 0) -> MaskProblem:
    """Activations with non-zero means, so the first-order error is large enough to act on."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 32, generator=g, dtype=torch.float64) + shift * torch.linspace(-1, 2, 32, dtype=torch.float64)
    w = torch.randn(8, 32, generator=g, dtype=torch.float64)
    pat = PerRow(16) if pattern == "per-row" else NM(int(pattern[0]), int(pattern[2]))
    return MaskProblem.from_activations(w, x, pat)


@pytest.mark.parametrize("pattern", ["per-row", "2:4", "4:8"])
def test_feasible_and_reduces_first_order_error(pattern):
    p = _problem(pattern)
    r = solvers.solve("dsnot", p, update_threshold=0.0)
    assert r.status == "feasible" and r.verified and r.warm_start == "wanda"
    assert bool(p.pattern.is_feasible(r.mask).all())
    assert r.extra["swaps"] > 0 and 1 <= r.iterations <= 50
    mean = r.settings["seqlen"] * p.input_mean       # the released code's units: seqlen · E[x]
    err0 = torch.where(solvers.solve("wanda", p).mask, 0.0, p.weight * mean).sum(1).abs()
    err1 = torch.where(r.mask, 0.0, p.weight * mean).sum(1).abs()
    if r.extra["same_sign"]:  # with the sign check each accepted swap keeps e on its side of 0
        assert float(err1.sum()) <= float(err0.sum()) + 1e-9
    assert r.extra["abs_error_final_mean"] == pytest.approx(float(err1.mean()), rel=1e-9)


def test_threshold_and_cycle_limits():
    p = _problem()
    big = solvers.solve("dsnot", p, update_threshold=1e9)
    assert big.extra["swaps"] == 0 and torch.equal(big.mask, solvers.solve("wanda", p).mask)
    one = solvers.solve("dsnot", p, update_threshold=0.0, max_cycles=1)
    assert one.iterations == 1 and one.extra["swaps"] <= p.d_out


def test_sign_flip_stop_follows_code_defaults():
    p = _problem()
    per_row = solvers.solve("dsnot", p, update_threshold=0.0)
    assert per_row.extra["same_sign"] is False          # released code, unstructured branch
    nm = solvers.solve("dsnot", p.with_pattern(NM(2, 4)), update_threshold=0.0)
    assert nm.extra["same_sign"] is True                # released code, N:M branch
    forced = solvers.solve("dsnot", p, update_threshold=0.0, same_sign=True)
    err0 = torch.where(solvers.solve("wanda", p).mask, 0.0, p.weight * p.input_mean).sum(1)
    err1 = torch.where(forced.mask, 0.0, p.weight * p.input_mean).sum(1)
    assert bool((torch.sign(err1) == torch.sign(err0)).all() | (err1 == 0).all())


def test_single_row_by_hand():
    # one row, per-row k=2; means 1, variances 1; Wanda prunes the two smallest |w| (sqrt(G_jj) equal)
    w = torch.tensor([[0.1, 0.2, -1.0, 1.5]], dtype=torch.float64)
    keep = torch.tensor([[False, False, True, True]])
    gram = torch.eye(4, dtype=torch.float64)
    mean = torch.ones(4, dtype=torch.float64)
    var = torch.ones(4, dtype=torch.float64)
    # e = 0.1 + 0.2 = 0.3 > 0: regrow the largest positive (column 1, metric 0.2), prune the next
    # negative-metric kept weight (column 2, -1.0): e_after = 0.3 - 1.0 - 0.2 = -0.9 (no sign check per-row)
    out, stats = dsnot_mask(w, gram, mean, var, keep, PerRow(2), max_cycles=1, update_threshold=0.1)
    assert out.tolist() == [[False, True, False, True]] and stats["swaps"] == 1
    out2, stats2 = dsnot_mask(w, gram, mean, var, keep, PerRow(2), max_cycles=1, update_threshold=0.1,
                              same_sign=True)
    assert out2.tolist() == keep.tolist() and stats2["swaps"] == 0


def test_missing_statistics_error():
    p = _problem()
    bare = MaskProblem(p.weight, p.gram, p.pattern)
    with pytest.raises(MissingStatisticsError, match="input_mean / input_var"):
        solvers.solve("dsnot", bare)


def test_deterministic():
    p = _problem(seed=3)
    a = solvers.solve("dsnot", p, update_threshold=0.0)
    b = solvers.solve("dsnot", p, update_threshold=0.0)
    assert torch.equal(a.mask, b.mask)
