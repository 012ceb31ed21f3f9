"""The gap bracket: lower end (found by lns) ≤ upper end (certified by the bound), end to end."""

from __future__ import annotations

import json

import pandas as pd

from bench.studies.gap_bracket import main
from reports.gap_bracket import bracket, bracket_table
from solvers import generate, save_instance


def test_bracket_ends_are_ordered_end_to_end(tmp_path):
    layer = generate(family="small", d_in=32, d_out=12, seed=5)
    layer.metadata.update(layer="model.layers.0.self_attn.q_proj", layer_type="self_attn.q_proj", block="0")
    path = tmp_path / "layer.safetensors"
    save_instance(layer, path)
    out = tmp_path / "out"
    assert main([str(path), "--rows", "4", "--crop-d", "16", "--crop-rows", "2", "--exact-time-limit", "30",
                 "--workers", "1", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    full = [r for r in records if r["part"] == "full"]
    assert len(full) == 4
    for r in full:
        assert 0.0 <= r["bound"] <= r["lns"] * (1 + 1e-9) and r["lns"] <= r["swap"] * (1 + 1e-12)
    summary = bracket(pd.DataFrame(full))
    assert len(summary) == 1 and 0.0 <= summary["found_pct"].iloc[0] <= summary["certified_pct"].iloc[0]
    crop = [r for r in records if r["part"] == "crop"]
    assert crop and crop[0]["proved"] and crop[0]["optimum"] <= crop[0]["lns"] * (1 + 1e-9)
    assert (out / "gap_bracket.png").stat().st_size > 0
    assert "self_attn.q_proj" in (out / "summary.md").read_text()


def test_bracket_table_from_plain_frame():
    frame = pd.DataFrame({"layer_type": ["a", "a", "b"], "block": ["1", "2", "1"],
                          "swap": [10.0, 10.0, 5.0], "lns": [9.0, 10.0, 5.0], "bound": [5.0, 5.0, 0.0]})
    summary = bracket(frame)
    a = summary.set_index("layer_type").loc["a"]
    assert abs(a["found_pct"] - 100 * (20 / 19 - 1)) < 1e-9 and abs(a["certified_pct"] - 100.0) < 1e-9
    assert summary.set_index("layer_type").loc["b", "certified_pct"] == float("inf")
    assert "| a | 2 (1,2) |" in bracket_table(summary)


def test_missing_or_crop_only_input_is_one_line(tmp_path, capsys):
    from bench.studies.gap_bracket import main as bracket_main

    assert bracket_main([str(tmp_path / "missing.safetensors")]) == 2
    assert bracket_main([str(tmp_path / "layer.crop0.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["maskbench: error: no such instance file: " + str(tmp_path / "missing.safetensors"),
                   "maskbench: error: no full-layer instance files given (run 'maskbench extract' first)"]


def _record(layer_type, row, relaxation, swap, lns, bound, seconds):
    return {"part": "full", "layer": f"model.layers.3.{layer_type}", "layer_type": layer_type, "block": "3", "row": row,
            "d": 64, "relaxation": relaxation, "swap": swap, "lns": lns, "bound": bound, "bound_seconds": seconds}


def test_from_records_puts_each_relaxation_in_its_column(tmp_path, capsys):
    shor = tmp_path / "shor.jsonl"
    dnn = tmp_path / "dnn.jsonl"
    shor.write_text("\n".join(json.dumps(_record("mlp.up_proj", r, "shor", 10.0, 9.5, 7.5, 2.0)) for r in (1, 2)))
    dnn.write_text("\n".join(json.dumps(_record("mlp.up_proj", r, "dnn", 10.0, 9.0, 8.0, 70.0 + r)) for r in (1, 2)))
    out = tmp_path / "out"
    assert main(["--from-records", str(shor), str(dnn), "--out", str(out)]) == 0
    text = (out / "summary.md").read_text()
    # the dnn bracket first: found 20/18 − 1 = 11.11 %, certified 20/16 − 1 = 25 %; then shor 33.3 % beside it
    assert "| mlp.up_proj | 2 (3) | 11.11 % | 25.0 % | 0.800 |" in text
    assert "| mlp.up_proj | 2 (3) | 11.11 % | 33.3 % | 25.0 % | 0.750 | 0.800 | 2.0 | 71.5 |" in text
    assert (out / "gap_bracket.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "records.jsonl").exists()     # nothing computed, nothing appended


def test_from_records_refuses_bad_input_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"part": "full"}\nnot json\n')
    assert main(["--from-records", str(tmp_path / "none.jsonl")]) == 2
    assert main(["--from-records", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("maskbench: error: cannot read records file " + str(tmp_path / "none.jsonl"))
    assert err[1] == f"maskbench: error: {bad}:2: not a JSON record"


def test_from_records_never_overwrites_its_records_input(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    records = out / "summary.md"          # a records file that happens to carry an output's name
    records.write_text(json.dumps(_record("mlp.up_proj", 1, "shor", 10.0, 9.5, 7.5, 2.0)) + "\n")
    before = records.read_bytes()
    assert main(["--from-records", str(records), "--out", str(out)]) == 2
    assert records.read_bytes() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("maskbench: error: ") and "input" in err[0]
