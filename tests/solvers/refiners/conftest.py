"""Shared fixtures of the refiner tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def cpp_kernel():
    """Skip, with the compiler's reason, when the fused C++ swap kernel cannot be built here."""
    from solvers.refiners.swap import resolve_backend

    if resolve_backend("auto", torch.device("cpu"), None) != "cpp":
        from solvers.refiners.swap_cpp import load_error

        pytest.skip(f"C++ kernel unavailable: {load_error()}")
