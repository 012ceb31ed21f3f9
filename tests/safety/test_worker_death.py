"""Issue 34, part 2: a worker process that dies marks its task as an error; the other tasks finish."""

from __future__ import annotations

import os
import signal

from bench.runner import _run_pool, build_tasks
from bench.suites import load_suite
from bench.tasks import run_task
from tests.bench.conftest import _write_suite


def crash_on_sparsegpt(task, threads):
    """A task function for the pool: the sparsegpt tasks kill their worker as a native crash would."""
    if task.config.name == "sparsegpt":
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task, threads)


def test_a_dying_worker_is_an_error_row_and_the_rest_finish(tmp_path):
    suite = load_suite(str(_write_suite(tmp_path, seeds="[0]")))
    tasks = build_tasks(suite, tmp_path / "instances", log=lambda m: None)
    rows = []
    _run_pool(tasks, rows.append, 2, 1, work=crash_on_sparsegpt)
    assert sorted(r["task_key"] for r in rows) == sorted(t.key for t in tasks)  # every task has exactly one row
    died = [r for r in rows if r["status"] == "error"]
    assert died and all(r["solver_name"] == "sparsegpt" and r["message"].startswith("WorkerDied") for r in died)
    assert all(r["status"] != "error" for r in rows if r["solver_name"] != "sparsegpt")
