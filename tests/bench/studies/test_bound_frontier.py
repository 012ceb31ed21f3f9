"""bench/studies/bound_frontier.py: bound quality against budget, by layer type; valid bounds; table and figure."""

from __future__ import annotations

import json

import pandas as pd

from bench.studies.bound_frontier import main
from reports.bound_frontier import frontier, frontier_table
from solvers import generate, save_instance


def test_frontier_end_to_end(tmp_path):
    layer = generate(family="small", d_in=40, d_out=10, seed=9)
    layer.metadata.update(layer="model.layers.0.self_attn.q_proj", layer_type="self_attn.q_proj", block="0")
    path = tmp_path / "layer.safetensors"
    save_instance(layer, path)
    out = tmp_path / "out"
    assert main([str(path), "--rows", "3", "--newton-steps", "2", "30", "--workers", "1", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert sorted({r["newton_steps"] for r in records}) == [2, 30] and len(records) == 6
    for r in records:
        assert 0.0 <= r["bound"] <= r["swap"] * (1 + 1e-12) and r["seconds"] >= 0
    summary = frontier(pd.DataFrame(records))
    assert list(summary["newton_steps"]) == [2, 30]
    assert (out / "bound_frontier.png").stat().st_size > 0
    assert "| self_attn.q_proj | 3 |" in (out / "summary.md").read_text()


def test_frontier_table_from_plain_frame():
    frame = pd.DataFrame({"layer_type": ["a", "a", "a", "a"], "newton_steps": [10, 10, 40, 40],
                          "swap": [10.0, 10.0, 10.0, 10.0], "bound": [5.0, 5.0, 8.0, 8.0],
                          "seconds": [1.0, 3.0, 4.0, 6.0]})
    summary = frontier(frame)
    assert list(summary["bound_over_swap"]) == [0.5, 0.8]
    assert list(summary["certified_pct"]) == [100.0, 25.0]
    assert list(summary["median_seconds"]) == [2.0, 5.0]
    assert "0.500 (100 %, 2.0 s)" in frontier_table(summary) and "0.800 (25 %, 5.0 s)" in frontier_table(summary)


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.safetensors")]) == 2
    assert main([str(tmp_path / "x.safetensors"), "--rows", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("maskbench: error:") for line in err)
