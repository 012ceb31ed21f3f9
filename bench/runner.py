"""The benchmark runner: every (instance × solver configuration) of a suite is a task.

* Each finished task is committed to the store at once (one transaction), so a run killed
  even with SIGKILL loses nothing that finished; the pool's workers exit with the runner
  (:mod:`bench.worker_lifetime`).
* Resumable: rerunning a suite at the same git commit continues its latest run, skips
  finished tasks and retries the tasks stored as ``error`` (saying how many); ``force=True``
  starts a new run and recomputes everything.
* One runner per run: the runner owns the run it executes (:mod:`bench.run_owner`, a
  heartbeat in the store); a second runner of the same run is refused with a message naming
  the owner, and a stored result is never overwritten (only ``error`` rows are replaced).
* A suite that yields no task at all is an error naming why.
* Executors: a local process pool (default), a Dask ``LocalCluster`` (``dask_local=N``)
  or an existing Dask scheduler (``scheduler="tcp://…"``, e.g. started by dask-jobqueue on
  SLURM). Tasks are the same picklable calls either way, so objectives are identical.
* A tqdm progress bar with ETA; solver errors are recorded with status ``error``, failed
  whole-model prunes likewise; the summary counts every error row the run holds.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.errors import StoreError, SuiteError
from bench.instances import materialise
from bench.machine import git_state, machine_info
from bench.run_owner import HEARTBEAT_SECONDS, RunOwner
from bench.store import ResultStore
from bench.suites import SolverConfig, Suite
from bench.tasks import Task, died_row, run_task, task_key
from bench.worker_lifetime import exit_with_parent
from solvers.registry import chain_name, chain_unavailable_reason


@dataclass
class RunSummary:
    """``total`` tasks; ``skipped``: already finished; ``retried``: stored as error and run again;
    ``done``: computed now; ``errors``: error rows the run holds at the end (old and new)."""

    run_id: int
    total: int
    skipped: int
    done: int
    errors: int
    resumed: bool
    retried: int = 0


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
    """Every (instance × applicable solver configuration) and prune task; :class:`SuiteError` if none."""
    configs = usable_configs(suite, log)
    instances = materialise(suite.instances, suite.base_dir, cache, log)
    tasks, matched = [], [0] * len(configs)
    for ref in instances:
        for i, cfg in enumerate(configs):
            if cfg.applies_to(int(ref.info["d_in"]), str(ref.info.get("family", ""))):
                tasks.append(Task(task_key(ref.instance_id, cfg), instance=ref, config=cfg))
                matched[i] += 1
    for cfg, count in zip(configs, matched):
        if instances and not count:
            log(f"solver configuration {cfg.display!r} applies to no instance of the suite "
                f"(max_d_in={cfg.max_d_in}, families={list(cfg.families)})")
    prune_tasks = []
    for p in suite.prune:
        reason = chain_unavailable_reason(chain_name(p.solver, p.warm_start))
        if reason:
            log(f"skipping prune task {p.display!r}: {reason}")
        else:
            prune_tasks.append(Task(p.key, prune=p))
    if not tasks and not prune_tasks:
        raise SuiteError(f"suite {suite.name!r} has no tasks: {_why_no_tasks(suite, configs, instances)}")
    return tasks + prune_tasks


def _why_no_tasks(suite: Suite, configs: list[SolverConfig], instances: list) -> str:
    reasons = []
    if suite.solvers and not configs:
        reasons.append("none of its solver configurations is available (see the messages above)")
    if suite.instances and not instances:
        reasons.append("its instance sources yielded no instance (see the messages above)")
    if configs and instances:
        reasons.append("no solver configuration applies to any instance (max_d_in / families filters)")
    if suite.prune:
        reasons.append("none of its [[prune]] solvers is available")
    return "; ".join(reasons) or "no [[instances]] × [[solvers]] or [[prune]] entries"


def _local_executor(workers: int):
    import multiprocessing as mp

    # fork is fast but unsafe with threads already running (torch); spawn is the portable choice
    # workers end with the runner, even when it is killed with SIGKILL (see bench.worker_lifetime)
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))


class _Heartbeat:
    """Refreshes the run owner's heartbeat every ``HEARTBEAT_SECONDS`` from a daemon thread."""

    def __init__(self, store: ResultStore, run_id: int, owner: RunOwner):
        self.store, self.run_id, self.owner = store, run_id, owner
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="maskbench-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.lost = self.lost or not self.store.beat(self.run_id, self.owner)
            except Exception:  # noqa: BLE001 -- a busy store must not kill the thread; the next beat retries
                continue

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_suite(suite: Suite, store: ResultStore, workers: int | None = None, force: bool = False,
              scheduler: str | None = None, dask_local: int | None = None, threads_per_task: int = 1,
              log: Callable[[str], None] = print, progress: bool = True) -> RunSummary:
    """Run (or resume) ``suite`` into ``store``; see the module docstring."""
    commit, dirty = git_state()
    cache = store.path.parent / "instances"
    tasks = build_tasks(suite, cache, log)  # before claiming a run: a suite without tasks leaves no trace
    owner = RunOwner()
    run_id, resumed = store.claim_run(suite.name, suite.content_hash, commit, dirty, machine_info(), owner, force)
    status = "interrupted"
    try:
        finished, stored_errors = store.task_keys_by_status(run_id)
        pending = [t for t in tasks if t.key not in finished]
        retried = sum(t.key in stored_errors for t in pending)
        log(f"run {run_id} ({'resumed' if resumed else 'new'}) of suite {suite.name!r}: {len(tasks)} tasks, "
            f"{len(tasks) - len(pending)} already finished, "
            + (f"{retried} stored as error will be retried, " if retried else "")
            + f"{len(pending)} to do")
        summary = RunSummary(run_id, len(tasks), len(tasks) - len(pending), 0, 0, resumed, retried)
        with _Heartbeat(store, run_id, owner) as heartbeat:
            _execute(pending, store, run_id, owner, heartbeat, summary, suite.name, workers, scheduler, dask_local,
                     threads_per_task, progress)
        summary.errors = len(store.task_keys_by_status(run_id)[1])
        status = "finished"
        return summary
    finally:
        store.release_run(run_id, owner, status)


def _execute(pending: list[Task], store: ResultStore, run_id: int, owner: RunOwner, heartbeat: _Heartbeat,
             summary: RunSummary, name: str, workers: int | None, scheduler: str | None, dask_local: int | None,
             threads_per_task: int, progress: bool) -> None:
    """Run the pending tasks on the chosen executor, storing each row as it arrives."""
    bar = tqdm(total=len(pending), desc=f"maskbench {name}", unit="task", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    new_errors = 0

    def record(row: dict) -> None:
        nonlocal new_errors
        if heartbeat.lost:
            raise StoreError(f"run {run_id} was taken over by another runner (this runner's heartbeat lapsed); "
                             f"stopping")
        row["run_id"] = run_id
        store.store_task_row(row, owner)  # raises if another runner took the run over
        summary.done += 1
        new_errors += row.get("status") == "error"
        bar.set_postfix_str(f"errors={new_errors}")
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
    finally:
        bar.close()


def _run_pool(tasks: list[Task], record, workers: int, threads: int, work=run_task) -> None:
    """Tasks on a pool of spawned workers. A worker that dies (SIGSEGV/SIGBUS in native code, the OOM
    killer) breaks the pool: every task it held is run again alone in a fresh one-worker pool, so the task
    that kills its worker again is stored as an ``error`` row ("WorkerDied: …") and the others finish;
    the rest of the queue continues on a new pool."""
    # prune tasks (whole models) run one at a time after the others, to bound memory
    light = [t for t in tasks if t.prune is None]
    heavy = [t for t in tasks if t.prune is not None]
    queue = iter(light)
    while True:
        suspects = _pool_pass(queue, record, workers, threads, work)
        if suspects is None:
            break
        for task in suspects:
            if _pool_pass(iter([task]), record, 1, threads, work) is not None:
                record(died_row(task, "its worker process died (a crash in native code or out of memory)"))
    for task in heavy:
        record(run_task(task, max(threads, os.cpu_count() or 1)))


def _pool_pass(queue, record, workers: int, threads: int, work) -> list[Task] | None:
    """Run ``queue`` on one pool; None when it ran to the end, else the tasks in flight when the pool broke."""
    with _local_executor(workers) as pool:
        running = {}
        for task in queue:
            running[pool.submit(work, task, threads)] = task
            if len(running) >= 2 * workers:
                break
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    row = fut.result()
                except BrokenProcessPool:
                    return list(running.values())
                del running[fut]
                record(row)
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(work, nxt, threads)] = nxt
    return None


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
