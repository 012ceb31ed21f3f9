"""Whole-model pruning grid on a real model: perplexity per solver and pattern.

    python -m bench.studies.prune_models [MODEL] --nsamples 32 --seqlen 256 --out prune_grid.json

Default grid (the issue's benchmark): SmolLM2-135M (Q4_1 GGUF dequantised to fp32) at 50% and
60% per-row sparsity and 2:4, with dense, magnitude, Wanda, RIA, SparseGPT-style (mask only),
Wanda+1-swap and Wanda+DSnoT. Solvers that are not registered / not available are skipped with
a printed note. The model is loaded once (``--dtype``, ``--offload``: see docs/scale.md); every run restores the
dense weights from the memory-mapped checkpoint (no second copy in memory), prunes
sequentially (pruned-so-far propagation unless ``--propagation dense``) and evaluates perplexity
on the same held-out windows. Runs are ordered 50% → 2:4 → 60% and ``--budget-minutes`` stops
starting new runs once exceeded. Prints wall time per stage and peak memory; for refiners
warm-started from Wanda it prints the per-layer error reduction vs Wanda (min / median / max by
layer type). Results are appended to ``--out`` (JSON) after every run. ``--weight-updates`` runs
each solver a second time with updated weights (``sparsegpt``: its own OBS update,
``update_weights=true``; any other: the least-squares refit, ``--reconstruct``), labelled
``name (update)`` / ``name (refit)``:

    python -m bench.studies.prune_models --solvers sparsegpt,wanda+swap --settings per-row:0.5 --weight-updates
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from models.pipeline import CalibrationJob, PruningSession, peak_memory
from models.sequential import PruneSettings
from solvers.registry import UnknownSolverError, chain_unavailable_reason, split_chain

DEFAULT_SOLVERS = "magnitude,wanda,ria,sparsegpt,wanda+swap,wanda+dsnot"
DEFAULT_SETTINGS = "per-row:0.5,2:4,per-row:0.6"


def unavailable(name: str) -> str | None:
    try:
        return chain_unavailable_reason(name)
    except UnknownSolverError:
        return f"solver chain {name!r} names a solver that is not registered in this checkout"


def parse_setting(text: str) -> tuple[str, float]:
    if text.startswith("per-row:"):
        return "per-row", float(text.split(":", 1)[1])
    return text, 0.5


def reduction_summary(layers) -> dict[str, dict[str, float]]:
    by_kind: dict[str, list[float]] = {}
    for r in layers:
        if r.reduction is not None:
            by_kind.setdefault(r.kind, []).append(r.reduction)
    return {k: {"min": min(v), "median": statistics.median(v), "max": max(v)} for k, v in sorted(by_kind.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default=None)
    ap.add_argument("--solvers", default=DEFAULT_SOLVERS, help=f"comma list (default {DEFAULT_SOLVERS})")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help=f"comma list (default {DEFAULT_SETTINGS})")
    ap.add_argument("--weight-updates", action="store_true",
                    help="also run each solver with updated weights (sparsegpt: its update; others: the refit)")
    ap.add_argument("--nsamples", type=int, default=32)
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-windows", type=int, default=None, help="cap on held-out windows (default all)")
    ap.add_argument("--propagation", choices=("pruned", "dense"), default="pruned")
    ap.add_argument("--budget-minutes", type=float, default=None, help="start no new run after this")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"),
                    help="storage precision of the weights (default auto: the checkpoint's; GGUF float32)")
    ap.add_argument("--offload", default="auto", choices=("auto", "on", "off"),
                    help="block-wise execution from the CPU (default auto, see models.offload)")
    ap.add_argument("--out", default="prune_grid.json")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    session = PruningSession(CalibrationJob(args.model, args.nsamples, args.seqlen, args.seed,
                                            eval_windows=args.eval_windows, propagation=args.propagation,
                                            dtype=args.dtype, offload=args.offload))
    loaded, data, meta = session.loaded, session.data, session.metadata
    t_load = session.stage_seconds["load_and_tokenize"]
    print(f"model {loaded.name} (weights {loaded.source.weights_note}) on {loaded.device}; "
          f"load+tokenize {t_load:.1f} s", flush=True)
    print("protocol: " + ", ".join(f"{k}={v}" for k, v in data.protocol.metadata().items()), flush=True)
    dense = session.dense_perplexity()
    t_dense = session.stage_seconds["dense_perplexity"]
    print(f"dense perplexity {dense.ppl:.4f} ({dense.windows} windows x {dense.seqlen}); {t_dense:.1f} s", flush=True)
    out = {"protocol": meta, "dense_ppl": dense.ppl, "eval_windows": dense.windows,
           "stage_seconds": {"load_and_tokenize": t_load, "dense_perplexity": t_dense}, "runs": []}
    Path(args.out).write_text(json.dumps(out, indent=2))

    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    for name in solvers:
        reason = unavailable(name)
        if reason:
            print(f"note: skipping {name}: {reason}", flush=True)
    solvers = [s for s in solvers if unavailable(s) is None]
    for setting in [parse_setting(s.strip()) for s in args.settings.split(",") if s.strip()]:
        for name, update in [(n, u) for n in solvers for u in ((False, True) if args.weight_updates else (False,))]:
            if args.budget_minutes and time.perf_counter() - t0 > 60 * args.budget_minutes:
                print(f"note: budget of {args.budget_minutes} min spent; not starting {name} {setting}", flush=True)
                continue
            solver, warm = split_chain(name)
            own_update = update and solver == "sparsegpt"
            settings = PruneSettings(solver, setting[1], setting[0], warm, args.propagation, seed=args.seed,
                                     solver_settings={"update_weights": True} if own_update else {},
                                     reconstruct=update and not own_update)
            label_name = name + (" (update)" if own_update else " (refit)" if update else "")
            outcome = session.prune(settings)
            report, ppl = outcome.report, outcome.perplexity
            label = setting[0] if setting[0] != "per-row" else f"per-row {setting[1]:.0%}"
            run = {"solver": label_name, "pattern": setting[0], "sparsity": settings.effective_sparsity,
                   "pruned_ppl": ppl.ppl, "seconds": outcome.stage_seconds,
                   "reduction_vs_warm_start_by_type": reduction_summary(report.layers),
                   "layers": [r.to_json() for r in report.layers], **peak_memory()}
            out["runs"].append(run)
            Path(args.out).write_text(json.dumps(out, indent=2))
            stages = ", ".join(f"{k} {v:.0f}s" for k, v in run["seconds"].items())
            print(f"{label:<14} {label_name:<22} ppl {ppl.ppl:9.3f}   [{stages}; peak RSS {run['peak_rss_mib']:.0f} MiB]",
                  flush=True)
            updated = [r for r in report.layers if r.objective_updated is not None]
            if updated:
                print(f"    summed layer loss: mask only {sum(r.objective for r in updated):.6g}, with the written "
                      f"weights {sum(r.objective_updated for r in updated):.6g}", flush=True)
            for kind, s in run["reduction_vs_warm_start_by_type"].items():
                print(f"    {kind:<18} reduction vs {warm}: min {s['min']:.2f}%  median {s['median']:.2f}%  "
                      f"max {s['max']:.2f}%", flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s; results in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
