"""``bench/studies/device_parity.py``: records on one device, compared on another (here: the CPU twice, which
must agree to the last bit), and the validity checks that no rounding can excuse."""

from __future__ import annotations

import json

import pytest

from bench.studies import device_parity
from solvers import generate, save_instance


@pytest.fixture(scope="module")
def layer_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("parity") / "model.layers.0.self_attn.q_proj.safetensors"
    save_instance(generate(family="small", d_in=48, d_out=12, seed=5), path)
    return path


def test_cpu_against_its_own_reference(layer_file, tmp_path, capsys):
    ref, here = tmp_path / "ref.json", tmp_path / "here.json"
    args = [str(layer_file), "--device", "cpu", "--rows", "3", "--lns-time", "5"]
    assert device_parity.main(args + ["--out", str(ref)]) == 0
    assert device_parity.main(args + ["--out", str(here), "--reference", str(ref)]) == 0
    doc = json.loads(here.read_text())
    rec = doc["records"][0]
    assert doc["device"] == "cpu" and len(rec["rows"]) == 3 == len(rec["row_bound"])
    assert rec["swap"] <= rec["wanda"] and all(b <= v * (1 + 1e-9) for b, v in zip(rec["row_bound"], rec["row_lns"]))
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| model.layers.0")]
    assert len(table) == 1 and table[0].split("|")[2].strip() == "0.0e+00"  # same machine, same bits


def test_invalid_results_are_named():
    rec = {"layer": "L", "wanda": 1.0, "swap": 0.5, "rows": [3, 7], "row_swap": [0.3, 0.2],
           "row_lns": [0.25, 0.21], "row_bound": [0.26, 0.1]}
    problems = device_parity.invalid(rec)
    assert any("row 3: bound" in p for p in problems) and any("row 7: lns" in p for p in problems)
    assert device_parity.invalid({**rec, "row_lns": [0.25, 0.2], "row_bound": [0.2, 0.1]}) == []


def test_missing_file_is_one_line(tmp_path, capsys):
    assert device_parity.main([str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("maskbench: error: instance file not found")
