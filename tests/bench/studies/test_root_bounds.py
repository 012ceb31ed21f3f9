"""Root bounds against the proven optimum (bench.studies.root_bounds), end to end on a small layer."""

from __future__ import annotations

import json

from bench.studies.root_bounds import main
from solvers import generate, save_instance


def test_root_bounds_are_ordered_below_the_proven_optimum(tmp_path, capsys):
    layer = generate(family="small", d_in=40, d_out=6, seed=3)
    cache = tmp_path / "layer.safetensors"
    save_instance(layer, cache)
    out = tmp_path / "out"
    assert main(["--d", "20", "--seeds", "0", "1", "--time-limit", "60", "--dnn-steps", "400", "--cache", str(cache),
                 "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1]
    for r in records:
        assert r["status"] == "optimal" and r["optimum"] <= r["swap"] * (1 + 1e-12)
        assert 0.0 < r["shor_bound"] <= r["dnn_bound"] * (1 + 1e-12)
        assert r["dnn_bound"] <= r["optimum"] * (1 + 1e-9)
    printed = capsys.readouterr().out
    assert printed.count("tree proved") == 2 and "closes" in printed
