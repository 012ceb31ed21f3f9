"""bench/studies/scale.py at a tiny width: the model is written in float16, pruned block by block,
every stage of every block is timed, the sweep problem is measured, bad input is one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.studies import scale

ROOT = Path(__file__).resolve().parents[3]


def test_tiny_scale_run_records_memory_and_block_stages(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.chdir(ROOT)
    out = tmp_path / "scale.json"
    assert scale.main(["--blocks", "2", "--dims", "32,64,4,400", "--solvers", "wanda", "--workdir", str(tmp_path),
                       "--out", str(out), "--sweeps", "48x96"]) == 0
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    assert "error" not in run, run
    assert run["dtype"] == "float16" and run["offload"] is True and run["compute_dtype"] == "float32"
    assert run["blocks"] == 2 and run["peak_rss_mib"] > run["model_mib"] > 0
    assert set(run["per_block_mean"]) == {"materialise", "statistics", "solve", "propagate"}
    assert run["pruned_ppl"] > 0 and run["cpu_s"] > 0
    config = json.loads((tmp_path / "llama-32x64x4x400-B2" / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["dtype"] == "float16"
    (sweep,) = result["sweeps"]
    assert sweep["shape"] == "48x96" and sweep["sweep_s"] > 0 and sweep["verify_s"] > 0
    with pytest.raises(SystemExit) as exc:  # an existing output is not replaced
        scale.main(["--blocks", "2", "--out", str(out)])
    assert exc.value.code == 2


def test_bad_blocks_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        scale.main(["--blocks", "two", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("maskbench: error: --blocks") and "\n" not in err
