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
                             calib_dataset=cfg.calib_dataset, eval_dataset=cfg.eval_dataset, dense_check=cfg.dense_check,
                             extra_eval_datasets=tuple(cfg.more_eval_datasets), dtype=cfg.dtype, offload=cfg.offload)
        settings = PruneSettings(cfg.solver, cfg.sparsity, cfg.pattern, cfg.warm_start, seed=cfg.seed,
                                 solver_settings=dict(cfg.settings), dsnot_layers=cfg.dsnot_layers)
        zero_shot = _zero_shot_settings(cfg)
        session = _session(job)
        dense = session.dense_perplexity()
        zero_shot_results = {"dense": session.dense_zero_shot(zero_shot)} if zero_shot else {}
        outcome = session.prune(settings)
        if zero_shot:
            zero_shot_results["pruned"] = session.zero_shot(zero_shot)
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
                                         "config": asdict(cfg), "environment": session.environment,
                                         "perplexities": session.perplexities(outcome)}),
               zero_shot_json=json.dumps({k: v.to_json() for k, v in zero_shot_results.items()})
               if zero_shot_results else None)
    return row


def _zero_shot_settings(cfg):
    """The entry's zero-shot settings (include folders as given: relative to the working directory), or None."""
    if not cfg.zero_shot:
        return None
    from models.zero_shot import ZeroShotSettings, parse_tasks

    return ZeroShotSettings(parse_tasks(cfg.zero_shot), cfg.zero_shot_limit, tuple(cfg.zero_shot_include))
