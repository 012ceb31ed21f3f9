import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import SuiteError, load_suite
from tests.conftest import ROOT

SMALL_SUITE = """
name = "{name}"
[[instances]]
kind = "generated"
family = "tiny"
d_in = 12
d_out = 3
pattern = ["per-row", "2:4"]
seeds = {seeds}
[[solvers]]
name = "wanda"
[[solvers]]
name = "sparsegpt"
settings = {{ blocksize = 4 }}
[[solvers]]
name = "magnitude"
max_d_in = 8
"""


def write_suite(tmp_path: Path, name="t", seeds="[0, 1]") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SMALL_SUITE.format(name=name, seeds=seeds))
    return path


def test_run_stores_verified_results_and_resumes(tmp_path):
    suite = load_suite(str(write_suite(tmp_path)))
    store = ResultStore(tmp_path / "s.sqlite")
    first = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert (first.total, first.done, first.errors) == (8, 8, 0)  # magnitude filtered by max_d_in
    rows = store.results(first.run_id)
    assert {r["solver"] for r in rows} == {"wanda", "sparsegpt"}
    assert all(r["verified"] == 1 and r["status"] == "feasible" for r in rows)
    assert all(json.loads(r["instance_json"])["d_in"] == 12 for r in rows)
    again = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert again.resumed and again.run_id == first.run_id and again.done == 0 and again.skipped == 8
    forced = run_suite(suite, store, workers=1, force=True, progress=False, log=lambda m: None)
    assert forced.run_id != first.run_id and forced.done == 8
    assert store.run(first.run_id)["status"] == "finished"


def test_solver_errors_are_recorded_and_the_run_goes_on(tmp_path):
    path = tmp_path / "err.toml"
    path.write_text(SMALL_SUITE.format(name="err", seeds="[0]") + '\n[[solvers]]\nname = "wanda"\nlabel = "bad"\n'
                    'settings = { no_such_setting = 1 }\n')
    store = ResultStore(tmp_path / "s.sqlite")
    summary = run_suite(load_suite(str(path)), store, workers=1, progress=False, log=lambda m: None)
    rows = store.results(summary.run_id)
    bad = [r for r in rows if r["solver"] == "bad"]
    assert summary.errors == 2 and len(bad) == 2
    assert all(r["status"] == "error" and "no_such_setting" in r["message"] for r in bad)
    assert sum(r["status"] == "feasible" for r in rows) == 4


def test_suite_errors_are_clear(tmp_path):
    with pytest.raises(SuiteError, match="unknown suite 'nope'.*quick"):
        load_suite("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[instances]]\nkind = "weird"\n')
    with pytest.raises(SuiteError, match="kind must be one of"):
        load_suite(str(bad))
    bad.write_text('[[instances]]\nkind = "generated"\n[[solvers]]\nname = "wanda"\n[[solvers]]\nname = "wanda"\n')
    with pytest.raises(SuiteError, match="unique"):
        load_suite(str(bad))


def test_builtin_suites_parse():
    for name in ("quick", "gap", "layers", "paper", "paper-full"):
        suite = load_suite(name)
        assert suite.solvers or suite.prune


def _cli_proc(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_loses_nothing_and_recomputes_nothing(tmp_path):
    suite = tmp_path / "kill.toml"
    suite.write_text("""
name = "kill"
[[instances]]
kind = "generated"
family = "layer"
d_in = 320
d_out = 64
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[[solvers]]
name = "sparsegpt"
settings = { blocksize = 8 }
""")
    db = tmp_path / "s.sqlite"
    proc = _cli_proc(["run", suite, "--store", db, "--workers", "1", "--no-report"])
    deadline = time.time() + 240
    while _count(db) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ResultStore(db)
    before = {r["task_key"]: (r["id"], r["finished_at"]) for r in store.results()}
    assert 3 <= len(before) < 12, "the kill must land mid-run"
    assert store.run()["status"] == "running"  # killed without any chance to clean up
    proc = _cli_proc(["run", suite, "--store", db, "--workers", "1", "--no-report"])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert f"{len(before)} already finished" in err.decode()
    after = {r["task_key"]: (r["id"], r["finished_at"]) for r in store.results()}
    assert len(after) == 12 and len(store.runs()) == 1
    assert all(after[k] == v for k, v in before.items())  # finished tasks untouched


def test_two_concurrent_runners_on_one_store(tmp_path):
    db = tmp_path / "s.sqlite"
    a = _cli_proc(["run", write_suite(tmp_path, "a", "[0, 1, 2]"), "--store", db, "--workers", "1", "--no-report"])
    b = _cli_proc(["run", write_suite(tmp_path, "b", "[3, 4, 5]"), "--store", db, "--workers", "1", "--no-report"])
    for proc in (a, b):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    store = ResultStore(db)
    runs = store.runs()
    assert sorted(r["suite"] for r in runs) == ["a", "b"]
    for run in runs:
        assert len(store.results(run["id"])) == 12 and run["status"] == "finished"


def test_dask_local_cluster_gives_same_objectives_as_local(tmp_path):
    suite = load_suite(str(write_suite(tmp_path)))
    local_store, dask_store = ResultStore(tmp_path / "l.sqlite"), ResultStore(tmp_path / "d.sqlite")
    run_suite(suite, local_store, workers=2, progress=False, log=lambda m: None)
    run_suite(suite, dask_store, dask_local=2, progress=False, log=lambda m: None)
    local = {r["task_key"]: r["objective"] for r in local_store.results()}
    dask = {r["task_key"]: r["objective"] for r in dask_store.results()}
    assert local == dask and len(local) == 8
