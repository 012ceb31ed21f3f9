import json
import sqlite3

import pandas as pd
import pytest

from bench.compare import compare
from bench.export import load_source
from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import load_suite
from reports.build import build_report, prepare
from tests.bench.test_runner import write_suite


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    suite = load_suite(str(write_suite(tmp)))
    store = ResultStore(tmp / "s.sqlite")
    first = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    second = run_suite(suite, store, workers=1, force=True, progress=False, log=lambda m: None)
    return tmp, store, first.run_id, second.run_id


def test_identical_rerun_passes(two_runs, cli):
    tmp, store, r1, r2 = two_runs
    proc = cli("compare", f"{store.path}:{r1}", f"{store.path}:{r2}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "**OK**" in proc.stdout and "matched tasks: 8" in proc.stdout
    assert "median time ratio" in proc.stdout  # same machine: timings reported


def test_injected_regressions_are_detected(two_runs, cli, tmp_path):
    tmp, store, r1, r2 = two_runs
    db = tmp_path / "hacked.sqlite"
    db.write_bytes(store.path.read_bytes())
    with sqlite3.connect(db) as con:
        ids = [r[0] for r in con.execute("SELECT id FROM results WHERE run_id = ? ORDER BY id", (r2,))]
        con.execute("UPDATE results SET objective = objective * 1.01 WHERE id = ?", (ids[0],))
        con.execute("UPDATE results SET status = 'error' WHERE id = ?", (ids[1],))
        con.execute("UPDATE results SET verified = 0 WHERE id = ?", (ids[2],))
        con.execute("UPDATE results SET objective = objective * 1.0001 WHERE id = ?", (ids[3],))  # within 0.1%
        con.execute("DELETE FROM results WHERE id = ?", (ids[4],))
    proc = cli("compare", f"{store.path}:{r1}", f"{db}:{r2}")
    assert proc.returncode == 1
    out = proc.stdout
    assert "**REGRESSION**: 4 regressions" in out
    for what in ("objective +0.01", "status feasible -> error", "verification failed", "missing in new"):
        assert what in out
    assert cli("compare", f"{store.path}:{r1}", f"{db}:{r2}", "--tolerance", "1e-6").stdout.count("objective +") == 2
    assert cli("compare", f"{store.path}:{r1}", f"{db}:{r2}", "--allow-missing").stdout.count("missing in new") == 1


def test_exported_csv_baseline_round_trip(two_runs, cli, tmp_path):
    tmp, store, r1, r2 = two_runs
    csv = tmp_path / "baseline.csv"
    assert cli("export", str(r1), "--store", store.path, "--csv", csv).returncode == 0
    frame, info = load_source(str(csv))
    assert len(frame) == 8 and info["suite"] == "t"
    proc = cli("compare", csv, store.path)  # latest run of the store
    assert proc.returncode == 0 and "**OK**" in proc.stdout
    base, base_info = load_source(str(csv))
    new, new_info = load_source(f"{store.path}:{r2}")
    new.loc[new.index[0], "objective"] *= 2
    assert compare(base, new, base_info, new_info).failed


def test_compare_bad_sources(cli, tmp_path):
    proc = cli("compare", tmp_path / "none.sqlite", tmp_path / "none2.sqlite")
    assert proc.returncode == 2 and "no such store" in proc.stderr
    junk = tmp_path / "x.csv"
    junk.write_text("a,b\n1,2\n")
    proc = cli("compare", junk, junk)
    assert proc.returncode == 2 and "not a maskbench export" in proc.stderr


def test_report_writes_every_file(two_runs, cli, tmp_path):
    tmp, store, r1, _ = two_runs
    out = tmp_path / "rep"
    proc = cli("report", str(r1), "--store", store.path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    md = (out / "report.md").read_text()
    for section in ("Optimality gap", "Runtime", "1-swap convergence", "Per-layer error reduction",
                    "Exact solve time", "Perplexity", "commit", "machine:"):
        assert section in md
    assert (out / "fig_performance_profile.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table" in html


def test_report_figures_from_synthetic_rows(tmp_path):
    """Every figure is produced when the rows hold the data it needs."""
    def row(iid, solver, name, kind, obj, status="feasible", ws=None, layer=None, d=16, trace=None, wso=None):
        info = {"d_in": d, "d_out": 4, "pattern": "per-row", "family": "crop" if layer else "tiny"}
        if layer:
            info["layer"] = layer
        return {"instance_id": iid, "instance_json": json.dumps(info), "solver": solver, "solver_name": name,
                "warm_start": ws, "status": status, "objective": obj, "lower_bound": obj if status == "optimal" else None,
                "build_seconds": 0.1, "solve_seconds": d / 10, "trace_json": json.dumps(trace or []),
                "extra_json": json.dumps({"solver_kind": kind, "warm_start_objective": wso}),
                "settings_hash": solver, "verified": 1}
    rows = []
    for b in range(3):
        for t in ("q_proj", "down_proj"):
            iid = f"i{b}{t}"
            layer = f"model.layers.{b}.self_attn.{t}"
            rows += [row(iid, "highs", "highs", "exact", 1.0, "optimal", layer=layer, d=16 + 16 * b),
                     row(iid, "wanda", "wanda", "baseline", 1.5, layer=layer),
                     row(iid, "wanda+swap", "swap", "refiner", 1.1, ws="wanda", layer=layer, wso=1.5,
                         trace=[[0, 1.5], [0.1, 1.2], [0.2, 1.1]])]
    frame = pd.DataFrame(rows)
    prune = pd.DataFrame([{"model": "m", "solver": "swap", "warm_start": "wanda", "sparsity": 0.5,
                           "pattern": "per-row", "dense_ppl": 10.0, "pruned_ppl": 12.0, "seconds": 3.0,
                           "layers_json": json.dumps([{"name": "model.layers.0.mlp.up_proj", "objective": 1.0,
                                                       "warm_start_objective": 2.0}])}])
    files = build_report(frame, prune, {"suite": "x", "run": 1, "machine": {}}, tmp_path)
    names = {f.name for f in files}
    assert {"fig_performance_profile.png", "fig_swap_convergence.png", "fig_layer_reduction.png",
            "fig_exact_time_vs_d.png", "report.md", "report.html"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "12" in md and "50" in md  # pruned ppl and 50 % layer reduction appear
    gaps = prepare(frame).set_index(["instance_id", "solver"])["gap_to_ref"]
    assert gaps[("i0q_proj", "wanda")] == pytest.approx(0.5) and gaps[("i0q_proj", "highs")] == 0
