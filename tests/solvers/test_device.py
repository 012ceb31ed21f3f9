"""Device choice: auto picks CUDA only when present; CUDA asked for on a machine without it and
malformed devices are one-line settings errors."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.device import pick_device
from solvers.errors import SettingsError


def test_auto_and_cpu():
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("auto") == pick_device(None)
    assert pick_device("cpu") == torch.device("cpu")


def test_malformed_device_is_refused():
    with pytest.raises(SettingsError, match="'gpu'"):
        pick_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused_before_any_work():
    problem = solvers.generate(family="tiny", d_in=16, d_out=4, seed=0)
    with pytest.raises(SettingsError, match="no CUDA device"):
        solvers.solve("swap", problem, warm_start="wanda", device="cuda")
