"""bench/studies/exact_speed.py: a small run end to end, the sdpbb tree-worker option and its check."""

from __future__ import annotations

import json

import pytest

from bench.studies import exact_speed


def test_small_run_writes_records_and_checks_targets(tmp_path, capsys):
    out = tmp_path / "runs.json"
    assert exact_speed.main(["--d", "16", "--backends", "sdpbb", "--sources", "synthetic", "--seeds", "1",
                             "--tree-workers", "2", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    assert [(r["d"], r["backend"], r["status"]) for r in records] == [(16, "sdpbb", "optimal")]
    printed = capsys.readouterr().out
    assert "sdpbb with 2 tree workers" in printed
    assert "synthetic d=128: not in this run (--d)" in printed and "real d=192: not in this run (--sources)" in printed


def test_targets_tell_skipped_sizes_from_sizes_not_asked_for():
    rec = {"source": "synthetic", "backend": "sdpbb", "d": 96, "status": "time_limit", "seconds": 60.0}
    text = exact_speed.targets([rec], [96, 128], ["synthetic"])
    assert "synthetic d=128: not run (skipped after time-outs at smaller d) -> NOT MET" in text
    assert "real d=256: not in this run (--sources)" in text
    assert "no real-layer rows in this run" in text


def test_tree_workers_below_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        exact_speed.main(["--tree-workers", "0"])
    assert exc.value.code == 2
    assert "--tree-workers must be at least 1" in capsys.readouterr().err
