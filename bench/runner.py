"""The benchmark runner: every (instance × solver configuration) of a suite is a task.

* Each finished task is committed to the store at once (one transaction), so a run killed
  even with SIGKILL loses nothing that finished.
* Resumable: rerunning a suite at the same git commit continues its latest run and skips
  finished tasks; ``force=True`` starts a new run and recomputes everything.
* Executors: a local process pool (default), a Dask ``LocalCluster`` (``dask_local=N``)
  or an existing Dask scheduler (``scheduler="tcp://…"``, e.g. started by dask-jobqueue on
  SLURM). Tasks are the same picklable calls either way, so objectives are identical.
* A tqdm progress bar with ETA; solver errors are recorded with status ``error``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.instances import materialise
from bench.machine import git_state, machine_info
from bench.store import ResultStore
from bench.suites import SolverConfig, Suite
from bench.tasks import Task, run_task, task_key
from solvers.registry import chain_name, chain_unavailable_reason


@dataclass
class RunSummary:
    run_id: int
    total: int
    skipped: int
    done: int
    errors: int
    resumed: bool


def usable_configs(suite: Suite, log: Callable[[str], None] = print) -> list[SolverConfig]:
    """The suite's solver configurations whose solvers are installed; unknown names are an error."""
    usable = []
    for cfg in suite.solvers:
        reason = chain_unavailable_reason(chain_name(cfg.name, cfg.warm_start))  # unknown names raise
        if reason:
            log(f"skipping solver configuration {cfg.display!r}: {reason}")
        else:
            usable.append(cfg)
    return usable


def build_tasks(suite: Suite, cache: Path, log: Callable[[str], None] = print) -> list[Task]:
    configs = usable_configs(suite, log)
    instances = materialise(suite.instances, suite.base_dir, cache, log)
    tasks = []
    for ref in instances:
        for cfg in configs:
            if cfg.applies_to(int(ref.info["d_in"]), str(ref.info.get("family", ""))):
                tasks.append(Task(task_key(ref.instance_id, cfg), instance=ref, config=cfg))
    for p in suite.prune:
        reason = chain_unavailable_reason(chain_name(p.solver, p.warm_start))
        if reason:
            log(f"skipping prune task {p.display!r}: {reason}")
        else:
            tasks.append(Task(p.key, prune=p))
    return tasks


def _local_executor(workers: int):
    import multiprocessing as mp

    # fork is fast but unsafe with threads already running (torch); spawn is the portable choice
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))


def run_suite(suite: Suite, store: ResultStore, workers: int | None = None, force: bool = False,
              scheduler: str | None = None, dask_local: int | None = None, threads_per_task: int = 1,
              log: Callable[[str], None] = print, progress: bool = True) -> RunSummary:
    """Run (or resume) ``suite`` into ``store``; see the module docstring."""
    commit, dirty = git_state()
    previous = None if force else store.resumable_run(suite.name, suite.content_hash, commit)
    if previous is not None:
        run_id, resumed = previous["id"], True
    else:
        run_id, resumed = store.start_run(suite.name, suite.content_hash, commit, dirty, machine_info()), False
    cache = store.path.parent / "instances"
    tasks = build_tasks(suite, cache, log)
    finished = store.finished_task_keys(run_id)
    pending = [t for t in tasks if t.key not in finished]
    log(f"run {run_id} ({'resumed' if resumed else 'new'}) of suite {suite.name!r}: {len(tasks)} tasks, "
        f"{len(tasks) - len(pending)} already finished, {len(pending)} to do")
    summary = RunSummary(run_id, len(tasks), len(tasks) - len(pending), 0, 0, resumed)
    store.set_run_status(run_id, "running")
    bar = tqdm(total=len(pending), desc=f"maskbench {suite.name}", unit="task", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def record(row: dict) -> None:
        row["run_id"] = run_id
        if row.get("task_key", "").startswith("prune:"):
            store.add_prune_result(row)
        else:
            store.add_result(row)
        summary.done += 1
        summary.errors += row.get("status") == "error"
        bar.set_postfix_str(f"errors={summary.errors}")
        bar.update(1)

    try:
        if scheduler or dask_local:
            _run_dask(pending, record, scheduler, dask_local, threads_per_task)
        else:
            workers = workers or max(1, min(len(pending), os.cpu_count() or 1))
            if workers == 1:
                for task in pending:
                    record(run_task(task, threads_per_task))
            else:
                _run_pool(pending, record, workers, threads_per_task)
    except BaseException:
        store.set_run_status(run_id, "interrupted")
        bar.close()
        raise
    bar.close()
    store.set_run_status(run_id, "finished")
    return summary


def _run_pool(tasks: list[Task], record, workers: int, threads: int) -> None:
    # prune tasks (whole models) run one at a time after the others, to bound memory
    light = [t for t in tasks if t.prune is None]
    heavy = [t for t in tasks if t.prune is not None]
    with _local_executor(workers) as pool:
        queue = iter(light)
        running = {}
        for task in queue:
            running[pool.submit(run_task, task, threads)] = task
            if len(running) >= 2 * workers:
                break
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                del running[fut]
                record(fut.result())
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(run_task, nxt, threads)] = nxt
    for task in heavy:
        record(run_task(task, max(threads, os.cpu_count() or 1)))


def _run_dask(tasks: list[Task], record, scheduler: str | None, dask_local: int | None, threads: int) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=dask_local, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_task, t, threads, pure=False) for t in tasks]
        for fut in as_completed(futures):
            record(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
