"""Reports from the store: ``maskbench report`` and :func:`bench.reporting.write_report`."""

import pandas as pd
import pytest

from bench.reporting import load_report_inputs, report_rows, write_report


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


def test_report_inputs_take_references_over_every_run(two_runs, tmp_path):
    """Run 1's rows are reported; run 2's rows on the same instances only inform the references."""
    _, store, r1, r2 = two_runs
    rows = report_rows(store, store.run(r1))
    assert rows["_this"].sum() == 8 and (~rows["_this"]).sum() == 8
    assert set(rows.loc[~rows["_this"], "run_id"]) == {r2}
    inputs = load_report_inputs(store, r1)
    assert len(inputs.frame) == 8 and set(inputs.frame["run_id"]) == {r1} and "_this" not in inputs.frame
    assert inputs.header["run"] == r1 and inputs.header["suite"] == "t" and inputs.prune.empty
    # no exact solver in the suite: the reference is the best objective over both (identical) runs
    best = rows.groupby("instance_id")["objective"].min()
    expected = inputs.frame["objective"] / inputs.frame["instance_id"].map(best) - 1
    assert inputs.frame["gap_to_ref"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12, abs=1e-15)
    assert (inputs.frame.groupby("instance_id")["gap_to_ref"].min() == 0).all()
    report = write_report(store, r1, tmp_path / "rep")
    assert report.files[:2] == [tmp_path / "rep" / "report.md", tmp_path / "rep" / "report.html"]
    assert isinstance(report.gap, pd.DataFrame) and pd.to_numeric(report.gap["n"]).sum() == 8


def test_other_machines_rows_inform_references_by_portable_key(write_suite, tmp_path):
    """Run 2 rebuilt the instances on 'another CPU' (other content hashes, same keys): its rows still
    count for run 1's references."""
    import sqlite3

    from bench.runner import run_suite
    from bench.store import ResultStore
    from bench.suites import load_suite

    suite = load_suite(str(write_suite(tmp_path)))
    store = ResultStore(tmp_path / "s.sqlite")
    r1 = run_suite(suite, store, workers=1, progress=False, log=lambda m: None).run_id
    r2 = run_suite(suite, store, workers=1, force=True, progress=False, log=lambda m: None).run_id
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE results SET instance_id = 'x' || instance_id, objective = objective * 0.5 "
                    "WHERE run_id = ? AND solver = 'wanda'", (r2,))
    rows = report_rows(store, store.run(r1))
    others = rows[~rows["_this"]]
    assert set(others["run_id"]) == {r2} and set(others["instance_id"]) <= set(rows.loc[rows["_this"], "instance_id"])
    frame = load_report_inputs(store, r1).frame
    wanda = frame[frame["solver"] == "wanda"]
    assert wanda["gap_to_ref"].to_numpy() == pytest.approx(1.0)  # run 2's halved objectives are the references


def test_prune_rows_carry_the_chain_label_the_runner_uses(tmp_path):
    from bench.reporting import prune_rows
    from bench.store import ResultStore
    from reports.data import prepare_prune

    store = ResultStore(tmp_path / "s.sqlite")
    run_id = store.start_run("p", "h", "c", False, {})
    for key, solver, warm in (("a", "wanda", None), ("b", "swap", "wanda"), ("c", "dsnot", "wanda+swap"), ("d", "swap", "")):
        store.add_prune_result({"run_id": run_id, "task_key": f"prune:{key}", "model": "m", "solver": solver,
                                "warm_start": warm, "sparsity": 0.5, "pattern": "per-row", "pruned_ppl": 9.0})
    frame = prune_rows(store, store.run(run_id))
    assert list(frame["chain"]) == ["wanda", "wanda+swap", "wanda+swap+dsnot", "swap"]
    assert list(prepare_prune(frame)["method"]) == ["wanda", "wanda+swap", "wanda+swap+dsnot", "swap"]
