"""bench/studies/dnn_frontier.py: Shor against the DNN bound by layer type; valid bounds, DNN never below Shor."""

from __future__ import annotations

import json

import pandas as pd

from bench.studies.dnn_frontier import main
from reports.bound_frontier import relaxation_summary, relaxation_table
from solvers import generate, save_instance


def test_dnn_frontier_end_to_end(tmp_path):
    layer = generate(family="small", d_in=24, d_out=8, seed=9)
    layer.metadata.update(layer="model.layers.0.self_attn.q_proj", layer_type="self_attn.q_proj", block="0")
    path = tmp_path / "layer.safetensors"
    save_instance(layer, path)
    out = tmp_path / "out"
    assert main([str(path), "--rows", "2", "--dnn-steps", "20", "--admm-steps", "50", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted({(r["relaxation"], r["dnn_steps"]) for r in records}) == [("dnn", 20), ("dnn-admm", 50), ("shor", 0)]
    for r in records:
        assert 0.0 <= r["bound"] <= r["swap"] * (1 + 1e-12) and r["seconds"] >= 0
    by_row = {(r["row"], r["relaxation"]): r["bound"] for r in records}
    for row in {r["row"] for r in records}:
        for dnn in ("dnn", "dnn-admm"):
            assert by_row[(row, dnn)] >= by_row[(row, "shor")] * (1 - 1e-9)
    assert (out / "dnn_frontier.png").stat().st_size > 0
    assert "| self_attn.q_proj | 2 |" in (out / "summary.md").read_text()


def test_relaxation_table_from_plain_frame():
    frame = pd.DataFrame({"layer_type": ["a"] * 5, "relaxation": ["shor", "shor", "dnn", "dnn", "dnn-admm"],
                          "dnn_steps": [0, 0, 50, 50, 9], "swap": [10.0] * 5, "bound": [5.0, 5.0, 8.0, 8.0, 9.0],
                          "seconds": [1.0, 3.0, 4.0, 6.0, 7.0]})
    summary = relaxation_summary(frame)
    table = relaxation_table(summary)
    assert "| layer type | rows | Shor | DNN 50 steps | DNN ADMM 9 iterations |" in table
    assert "0.500 (100 %, 2.0 s)" in table and "0.800 (25 %, 5.0 s)" in table


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.safetensors")]) == 2
    assert main([str(tmp_path / "x.safetensors"), "--rows", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("maskbench: error:") for line in err)
