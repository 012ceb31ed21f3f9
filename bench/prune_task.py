"""Runner task for a suite's ``[[prune]]`` entry: prune a whole model, store perplexities.

The row's ``status`` is ``finished``, or ``error`` when anything failed (the exception and a
short traceback go to ``protocol_json``): the runner counts such rows as errors and a resumed
run retries them, as for solver tasks.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict
from typing import Any

_SESSION: dict[Any, Any] = {}


def _session(job):
    """One cached session per process: consecutive prune tasks of a suite share model and windows."""
    from models.pipeline import PruningSession

    if job not in _SESSION:
        _SESSION.clear()
        _SESSION[job] = PruningSession(job)
    return _SESSION[job]


def run_prune_task(task) -> dict[str, Any]:
    from models.pipeline import CalibrationJob
    from models.sequential import PruneSettings

    cfg = task.prune
    row: dict[str, Any] = {"task_key": task.key, "model": cfg.model, "solver": cfg.solver,
                           "warm_start": cfg.warm_start, "sparsity": cfg.sparsity, "pattern": cfg.pattern}
    t0 = time.perf_counter()
    try:
        job = CalibrationJob(model=None if cfg.model == "default" else cfg.model, nsamples=cfg.nsamples,
                             seqlen=cfg.seqlen, seed=cfg.seed, eval_windows=cfg.eval_windows,
                             dtype=cfg.dtype, offload=cfg.offload)
        settings = PruneSettings(cfg.solver, cfg.sparsity, cfg.pattern, cfg.warm_start, seed=cfg.seed,
                                 solver_settings=dict(cfg.settings))
        session = _session(job)
        dense = session.dense_perplexity()
        outcome = session.prune(settings)
    except Exception as exc:  # recorded, never fatal to the run
        row.update(status="error", seconds=time.perf_counter() - t0, layers_json="[]",
                   protocol_json=json.dumps({"error": f"{type(exc).__name__}: {exc}",
                                             "traceback": traceback.format_exc(limit=8)}))
        return row
    row.update(status="finished", model=session.loaded.name, sparsity=settings.effective_sparsity,
               pattern=outcome.report.layers[0].pattern if cfg.pattern == "per-row" else cfg.pattern,
               dense_ppl=dense.ppl, pruned_ppl=outcome.perplexity.ppl, seconds=time.perf_counter() - t0,
               layers_json=json.dumps([r.to_json() for r in outcome.report.layers]),
               protocol_json=json.dumps({**session.metadata, "stage_seconds": {**session.stage_seconds,
                                                                                **outcome.stage_seconds},
                                         "config": asdict(cfg)}))
    return row
