"""Core sub-commands: ``solvers``, ``generate``, ``solve``, ``eval``."""

from __future__ import annotations

import argparse
import sys

from bench.cli_types import fraction, pattern_text, positive_float, positive_int
from bench.jsonout import emit_json, json_ready
from bench.paths import output_file
from bench.set_options import parse_set_options
from solvers import available_solvers, evaluate, generate, load_instance, load_mask, save_instance, save_mask, solve
from solvers.synthetic import FAMILIES, SyntheticSpec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solvers", help="list solvers and whether they are available",
                       description="List every registered solver: name, kind, availability (and why not).")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_solvers)

    p = sub.add_parser("generate", help="write a seeded synthetic instance file",
                       description="Generate a synthetic instance with LLM-like activations (correlated "
                                   "channels, 100-1000x outlier channels) and write it as an instance file.")
    p.add_argument("--family", choices=sorted(FAMILIES), default="small", help="size family (default: small)")
    p.add_argument("--d-in", type=positive_int, default=None, help="input dimension (default: family default)")
    p.add_argument("--d-out", type=positive_int, default=None, help="output rows (default: family default)")
    p.add_argument("--sparsity", type=fraction, default=0.5, help="pruned fraction for per-row (default 0.5)")
    p.add_argument("--pattern", type=pattern_text, default="per-row", help="'per-row' (default) or N:M such as 2:4")
    p.add_argument("--dead-fraction", type=fraction, default=0.0, help="share of dead inputs G_jj=0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", required=True, help="output instance file (.safetensors)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("solve", help="run one solver on an instance file",
                       description="Solve an instance with a registered solver; the mask is re-verified "
                                   "and its float64 objective printed.")
    p.add_argument("instance", help="instance file")
    p.add_argument("--solver", required=True, help="solver name (see 'maskbench solvers'), or a chain a+b")
    p.add_argument("--warm-start", default=None, help="warm-start solver name/chain, or a mask file")
    p.add_argument("--time-limit", type=positive_float, default=None, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="solver setting (JSON value), repeatable, e.g. --set max_iters=100")
    p.add_argument("--out", default=None, help="write the mask file here")
    p.add_argument("--reconstruct", action="store_true",
                   help="also refit the kept weights by least squares on G and report that loss "
                        "(extra.objective_reconstructed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("eval", help="verify a mask and print its objective",
                       description="Check a mask file against an instance's pattern and print f(M) in float64.")
    p.add_argument("instance")
    p.add_argument("mask")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_solvers(args) -> int:
    infos = available_solvers()
    if args.json:
        emit_json([i.__dict__ for i in infos], indent=2)
        return 0
    print(f"{'name':<12} {'kind':<9} {'available':<10} summary / reason")
    for i in infos:
        print(f"{i.name:<12} {i.kind:<9} {'yes' if i.available else 'no':<10} {i.summary if i.available else i.reason}")
    return 0


def cmd_generate(args) -> int:
    spec = SyntheticSpec(family=args.family, d_in=args.d_in, d_out=args.d_out, sparsity=args.sparsity,
                         pattern=args.pattern, seed=args.seed, dead_fraction=args.dead_fraction)
    target = output_file(args.out)
    problem = generate(spec)
    iid = save_instance(problem, target)
    print(f"wrote {args.out}: {problem.d_out}x{problem.d_in}, {problem.pattern.describe()}, id {iid}")
    return 0


def cmd_solve(args) -> int:
    target = output_file(args.out, args.instance, *([args.warm_start] if args.warm_start else [])) if args.out else None
    problem = load_instance(args.instance)
    warm = args.warm_start
    if warm is not None and (warm.endswith(".safetensors") or "/" in warm):
        warm = load_mask(warm)[0]
    result = solve(args.solver, problem, warm_start=warm, time_limit=args.time_limit, seed=args.seed,
                   **parse_set_options(args.set))
    if args.reconstruct and result.mask is not None:
        from solvers.reconstruct import weight_update

        weight_update(problem, result, reconstruct=True)  # records extra["objective_reconstructed"]
    iid = problem.instance_id()
    if target is not None and result.mask is not None:
        save_mask(result.mask, target, {"instance_id": iid, "solver": args.solver,
                                          "objective": repr(result.objective)})
    summary = json_ready({**result.summary(), "instance_id": iid, "d_out": problem.d_out, "d_in": problem.d_in,
                          "pattern": problem.pattern.describe()})
    if args.json:
        emit_json(summary)
    else:
        for key, value in summary.items():
            if value not in (None, "", {}):
                print(f"{key:>22}: {value}")
    return 1 if result.status == "error" else 0


def cmd_eval(args) -> int:
    problem = load_instance(args.instance)
    mask, meta = load_mask(args.mask)
    made_for = meta.get("instance_id")
    if made_for and made_for != problem.instance_id():
        print(f"maskbench: warning: {args.mask} was made for instance {made_for}, "
              f"not {problem.instance_id()} ({args.instance})", file=sys.stderr)
    mask, rows = evaluate(problem, mask)
    total = float(rows.sum())
    if args.json:
        emit_json({"instance_id": problem.instance_id(), "objective": total, "feasible": True,
                   "pattern": problem.pattern.describe()})
    else:
        print(f"feasible for {problem.pattern.describe()}; objective {total:.12g}")
    return 0
