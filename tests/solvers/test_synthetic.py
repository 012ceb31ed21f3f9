"""Synthetic instances (solvers.synthetic): seeded, LLM-like (outliers, conditioning, dead inputs)."""

from __future__ import annotations

import pytest
import torch

from solvers.synthetic import generate


def test_synthetic_instances_are_seeded_and_llm_like():
    a = generate(family="small", d_in=64, d_out=4, seed=5)
    b = generate(family="small", d_in=64, d_out=4, seed=5)
    c = generate(family="small", d_in=64, d_out=4, seed=6)
    assert a.instance_id() == b.instance_id() != c.instance_id()
    diag = torch.diagonal(a.gram)
    assert float(diag.max() / diag.median()) >= 100.0 ** 2  # outlier channel 100-1000x median scale
    assert float(torch.linalg.cond(a.gram)) >= 1e4
    with pytest.raises(ValueError, match="family 'tiny' needs d_in"):
        generate(family="tiny", d_in=64)
    dead = generate(family="tiny", d_in=16, dead_fraction=0.25)
    assert int((torch.diagonal(dead.gram) == 0).sum()) == 4
