"""The result row a task writes carries the instance's portable key and fingerprint next to its content hash."""

from __future__ import annotations

import json

import solvers
from bench.suites import SolverConfig
from bench.tasks import Task, instance_ref, run_task, task_key
from solvers import MaskProblem, save_instance
from solvers.identity import fingerprint, portable_key


def test_row_records_portable_key_and_fingerprint(tmp_path):
    problem = solvers.generate(family="tiny", d_in=12, d_out=3, seed=4)
    path = tmp_path / "p.safetensors"
    save_instance(problem, path)
    ref = instance_ref(path)
    assert ref.instance_key == portable_key(problem) and ref.instance_key.startswith("prov:")
    cfg = SolverConfig("wanda")
    row = run_task(Task(task_key(ref.instance_id, cfg), instance=ref, config=cfg))
    assert row["status"] == "feasible"
    assert row["instance_id"] == problem.instance_id() and row["instance_key"] == portable_key(problem)
    assert json.loads(row["fingerprint_json"]) == list(fingerprint(problem))  # JSON floats round-trip exactly


def test_file_without_provenance_is_keyed_by_content(tmp_path):
    generated = solvers.generate(family="tiny", d_in=12, d_out=3, seed=4)
    bare = MaskProblem(generated.weight, generated.gram, generated.pattern)
    path = tmp_path / "bare.safetensors"
    save_instance(bare, path)
    ref = instance_ref(path)
    assert ref.instance_key == f"content:{ref.instance_id}"
