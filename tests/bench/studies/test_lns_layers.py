"""bench/studies/lns_layers.py: lns against 1-swap on whole layers, per-row and 2:4, one markdown row each."""

from __future__ import annotations

import json

from bench.studies.lns_layers import main
from solvers import generate, save_instance


def test_whole_layers_per_row_and_2_4(tmp_path, capsys):
    layer = generate(family="layer", d_in=160, d_out=16, seed=8, sparsity=0.5)
    layer.metadata.update(layer="model.layers.0.self_attn.q_proj")
    path = tmp_path / "model.layers.0.self_attn.q_proj.safetensors"
    save_instance(layer, path)
    out = tmp_path / "records.jsonl"
    assert main([str(path), str(tmp_path / "x.crop0.safetensors"), "--threads", "1", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pattern"] for r in records] == ["per-row", "2:4"] and [r["nm"] for r in records] == [False, True]
    for r in records:
        assert r["lns"] <= r["swap"] and r["reduction"] == 1.0 - r["lns"] / r["swap"]
    assert records[0]["reduction"] > 0          # a 160-column row leaves lns something to find
    table = capsys.readouterr().out
    assert "| 0.self_attn.q_proj | 16 × 160 |" in table and table.count("%") == 2


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.safetensors")]) == 2
    assert main([str(tmp_path / "missing.safetensors"), "--patterns", "2:x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("maskbench: error:") for line in err)
