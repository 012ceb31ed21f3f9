"""The fused C++ swap kernel (solvers.refiners.swap_cpp): repeatable, agrees with torch, cache key.

Tests that run the kernel skip with the compiler's reason where it cannot be built.
"""

from __future__ import annotations

import pytest
import torch

import solvers


@pytest.mark.usefixtures("cpp_kernel")
def test_deterministic_and_agrees_with_torch():
    p = solvers.generate(family="small", d_in=48, d_out=12, seed=11)
    a = solvers.solve("swap", p, seed=0, backend="torch")
    c = solvers.solve("swap", p, seed=0, backend="cpp")
    d = solvers.solve("swap", p, seed=0, backend="cpp")
    assert torch.equal(c.mask, d.mask)
    assert c.objective == pytest.approx(a.objective, rel=1e-9)
