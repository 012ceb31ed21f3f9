"""``maskbench bound``: one JSON document, consistent totals, a certified gap, one-line errors."""

from __future__ import annotations

import json

import pytest

from solvers import load_instance, solve


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("bound")
    inst, mask = root / "i.safetensors", root / "m.safetensors"
    run_cli("generate", "--family", "small", "--d-in", "32", "--d-out", "4", "--seed", "3", "-o", inst, check=True)
    run_cli("solve", inst, "--solver", "wanda+swap", "--out", mask, check=True)
    return inst, mask


def test_json_with_mask(cli, files):
    inst, mask = files
    proc = cli("bound", inst, "--mask", mask, "--workers", "1", "--json", check=True)
    data = json.loads(proc.stdout)  # exactly one JSON document
    rows = data["row_lower_bounds"]
    assert len(rows) == 4 and data["lower_bound"] == pytest.approx(sum(rows), rel=1e-12)
    assert data["seconds"] > 0
    problem = load_instance(inst)
    optimum = solve("sdpbb", problem, workers=1)
    assert optimum.status == "optimal"
    assert all(b <= o * (1 + 1e-9) for b, o in zip(rows, optimum.row_objectives.tolist()))
    assert data["objective"] >= optimum.objective * (1 - 1e-12)
    assert data["gap"] == pytest.approx(data["objective"] / data["lower_bound"] - 1, rel=1e-12)
    assert data["gap"] >= 0


def test_table_without_mask(cli, files):
    inst, _ = files
    out = cli("bound", inst, "--workers", "1", "--newton-steps", "10", check=True).stdout
    assert out.startswith("lower bound ") and "10 Newton steps" in out and "gap" not in out


def test_errors_are_one_line(cli, files, tmp_path):
    inst, _ = files
    proc = cli("bound", tmp_path / "missing.safetensors")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("maskbench: error:")
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    proc = cli("bound", inst, "--newton-steps", "-3", "--json")
    assert proc.returncode == 2 and "--newton-steps" in proc.stderr and proc.stdout == ""  # refused at parse time
    assert len(proc.stderr.strip().splitlines()) == 1


def test_device_is_reported_and_cuda_without_cuda_is_one_line(cli, files):
    import torch

    inst, _ = files
    out = cli("bound", inst, "--workers", "1", "--device", "cpu", "--json", check=True).stdout
    assert json.loads(out)["device"] == "cpu"
    if not torch.cuda.is_available():
        proc = cli("bound", inst, "--device", "cuda")
        assert proc.returncode == 2 and "no CUDA device" in proc.stderr and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1
