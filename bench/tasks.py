"""One benchmark task = (instance file, solver configuration); executed in a worker process.

:func:`run_task` is a plain top-level function of picklable dicts, so the same code runs
in a local process pool and on Dask workers. It never raises for a solver failure: the
returned row then has status ``error`` and the message.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.jsonout import json_ready, json_text
from bench.suites import PruneConfig, SolverConfig


@dataclass(frozen=True)
class InstanceRef:
    """A materialised instance file and what reports need to know about it."""

    path: str
    instance_id: str      # exact content hash of W and G (differs between CPUs for recomputed instances)
    info: dict[str, Any]  # d_out, d_in, pattern, family, model, layer … (JSON-ready)
    instance_key: str = ""                 # portable key: provenance, or content for bare files
    fingerprint: tuple[float, ...] = ()    # rounding-tolerant numeric fingerprint of W and G


@dataclass(frozen=True)
class Task:
    key: str
    instance: InstanceRef | None = None
    config: SolverConfig | None = None
    prune: PruneConfig | None = None


def instance_ref(path: Path) -> InstanceRef:
    """Load (and so validate) an instance file; its id, portable key, fingerprint and the metadata
    reports group by (see :mod:`solvers.identity` for the key and the fingerprint).

    ``family`` is ``crop-d<d_in>`` for crops, ``layer`` for full real layers, else the
    generator's family (or the file's ``source``).
    """
    from solvers import load_instance
    from solvers.identity import fingerprint, portable_key

    problem = load_instance(path)
    meta = problem.metadata
    if "crop" in meta:
        family = f"crop-d{problem.d_in}"
    elif "layer" in meta:
        family = "layer"
    else:
        family = meta.get("family", meta.get("source", "file"))
    info = {**meta, "d_out": problem.d_out, "d_in": problem.d_in, "pattern": problem.pattern.describe(),
            "family": family}
    return InstanceRef(str(path), problem.instance_id(), info, portable_key(problem), fingerprint(problem))


def task_key(instance_id: str, config: SolverConfig) -> str:
    return f"{instance_id}:{config.key}"


def _task_row(task: Task) -> dict[str, Any]:
    """The identifying columns of a solver task's row."""
    cfg = task.config
    return {
        "task_key": task.key, "instance_id": task.instance.instance_id,
        "instance_key": task.instance.instance_key or f"content:{task.instance.instance_id}",
        "fingerprint_json": json_text(list(task.instance.fingerprint)) if task.instance.fingerprint else None,
        "instance_json": json_text(task.instance.info), "solver": cfg.display, "solver_name": cfg.name,
        "settings_json": json_text(cfg.settings), "settings_hash": cfg.key, "warm_start": cfg.warm_start,
    }


def died_row(task: Task, reason: str) -> dict[str, Any]:
    """The ``error`` row of a solver task whose worker process died (a crash in native code, the OOM killer)."""
    from solvers.registry import spec

    return {**_task_row(task), "status": "error", "objective": None, "verified": 0,
            "message": f"WorkerDied: {reason}", "extra_json": json_text({"solver_kind": spec(task.config.name).kind})}


def run_task(task: Task, threads: int = 1) -> dict[str, Any]:
    """Execute a task and return a results-store row (without ``run_id``)."""
    import torch

    torch.set_num_threads(max(1, threads))
    if task.prune is not None:
        from bench.prune_task import run_prune_task

        return run_prune_task(task)
    from solvers import load_instance, solve
    from solvers.registry import spec

    cfg = task.config
    kind = spec(cfg.name).kind
    row = _task_row(task)
    settings = dict(cfg.settings)
    if kind == "exact":
        # the runner already runs tasks in parallel: rows of one task are solved in this process
        settings.setdefault("workers", 1)
    t0 = time.perf_counter()
    try:
        problem = load_instance(task.instance.path)
        result = solve(cfg.name, problem, warm_start=cfg.warm_start, time_limit=cfg.time_limit, **settings)
    except Exception as exc:  # recorded, never fatal to the run
        row.update(status="error", objective=None, verified=0, solve_seconds=time.perf_counter() - t0,
                   message=f"{type(exc).__name__}: {exc}", extra_json=json_text(
                       {"traceback": traceback.format_exc(limit=8), "solver_kind": kind}))
        return row
    extra = dict(result.extra)
    extra["warm_start_objective"] = result.warm_start_objective
    extra["solver_kind"] = kind
    row.update(
        status=result.status, objective=json_ready(result.objective), lower_bound=json_ready(result.lower_bound),
        gap=json_ready(result.gap), build_seconds=result.build_seconds, solve_seconds=result.solve_seconds,
        iterations=result.iterations, nodes=result.nodes, trace_json=json_text(result.trace),
        verified=int(result.verified), message=result.message, extra_json=json_text(extra),
    )
    return row
