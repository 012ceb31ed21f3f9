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


def test_rows_sample_and_range_are_aligned_and_labelled(cli, files):
    inst, mask = files
    full = json.loads(cli("bound", inst, "--mask", mask, "--workers", "1", "--json", check=True).stdout)
    assert full["rows"] == [0, 1, 2, 3] and full["sample"] is False and "selected_lower_bound" not in full
    part = json.loads(cli("bound", inst, "--mask", mask, "--workers", "1", "--rows", "1:3", "--json", check=True).stdout)
    assert part["rows"] == [1, 2] and part["sample"] is False and "lower_bound" not in part
    assert part["row_lower_bounds"] == pytest.approx([full["row_lower_bounds"][i] for i in (1, 2)], rel=1e-9)
    assert part["selected_lower_bound"] == pytest.approx(sum(part["row_lower_bounds"]), rel=1e-12)
    assert "rows 1:3 of 4" in part["selection"]
    sample = json.loads(cli("bound", inst, "--workers", "1", "--rows", "2", "--seed", "5", "--json", check=True).stdout)
    assert sample["sample"] is True and len(sample["rows"]) == 2 == len(sample["row_lower_bounds"])
    assert sample["rows"] == sorted(set(sample["rows"])) and "lower_bound" not in sample and "sample of 2" in sample["selection"]
    again = json.loads(cli("bound", inst, "--workers", "1", "--rows", "2", "--seed", "5", "--json", check=True).stdout)
    assert again["rows"] == sample["rows"]
    text = cli("bound", inst, "--workers", "1", "--rows", "2", check=True).stdout
    assert "not of the layer" in text


def test_dnn_relaxation_from_the_cli_is_certified_and_not_below_shor(cli, files):
    inst, mask = files
    shor = json.loads(cli("bound", inst, "--mask", mask, "--workers", "1", "--json", check=True).stdout)
    dnn = json.loads(cli("bound", inst, "--mask", mask, "--workers", "1", "--relaxation", "dnn", "--dnn-steps", "60",
                         "--json", check=True).stdout)
    assert dnn["relaxation"] == "dnn" and dnn["dnn_steps"] == 60 and dnn["dnn_method"] == "admm"
    barrier = json.loads(cli("bound", inst, "--mask", mask, "--workers", "1", "--relaxation", "dnn", "--dnn-method",
                             "barrier", "--dnn-steps", "60", "--json", check=True).stdout)
    assert barrier["dnn_method"] == "barrier"
    optimum = solve("sdpbb", load_instance(inst), workers=1)
    for result in (dnn, barrier):
        assert all(d >= s * (1 - 1e-9) for d, s in zip(result["row_lower_bounds"], shor["row_lower_bounds"]))
        assert all(b <= o * (1 + 1e-9) for b, o in zip(result["row_lower_bounds"], optimum.row_objectives.tolist()))
        assert 0 <= result["gap"] <= shor["gap"] * (1 + 1e-9)


@pytest.mark.parametrize("argv, needle", [(("--rows", "5:2"), "rows 5:2"), (("--rows", "9"), "rows 9"),
                                          (("--rows", "0:99"), "rows 0:99"), (("--rows", "x"), "--rows"),
                                          (("--rows", "0"), "--rows"), (("--relaxation", "rlt"), "--relaxation"),
                                          (("--dnn-steps", "0"), "--dnn-steps"), (("--dnn-method", "x"), "--dnn-method")])
def test_bad_rows_and_relaxation_are_one_line_errors(cli, files, argv, needle):
    inst, _ = files
    proc = cli("bound", inst, "--workers", "1", *argv)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("maskbench: error:")
