"""``bound``: certified per-row and total lower bounds of an instance (solver ``bound``)."""

from __future__ import annotations

import argparse
import math
import time

from bench.cli_types import positive_float, positive_int
from bench.jsonout import emit_json
from solvers import load_instance, load_mask, solve
from solvers.exact.layer_bound import certified_gap


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bound", help="certified lower bounds of an instance (and a mask's certified gap)",
                       description="Per-row certified lower bounds (Shor SDP, a budget of barrier-Newton steps "
                                   "per row; see solvers/exact/layer_bound.py) and their total. With --mask, also "
                                   "the mask's objective and its certified gap = objective / lower_bound - 1 "
                                   "(an upper bound on how far the mask is from optimal). Seconds: the bound's wall time, "
                                   "including the wanda start when no mask is given, excluding loading the files.")
    p.add_argument("instance", help="instance file")
    p.add_argument("--mask", default=None, help="mask file: report its objective and certified gap (it also "
                                                "serves as the start that fixes columns; default start: wanda)")
    p.add_argument("--time-limit", type=positive_float, default=None,
                   help="seconds for the whole instance; rows not reached keep the bound 0")
    p.add_argument("--newton-steps", type=positive_int, default=None, help="Newton steps per row (default 30)")
    p.add_argument("--workers", type=positive_int, default=None, help="row processes (default: all CPUs)")
    p.add_argument("--device", default=None,
                   help="cpu (default) or cuda[:N]: where the per-row algebra runs (on CUDA rows run in one process)")
    p.add_argument("--progress", action="store_true", help="progress bar over rows (stderr)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: lower_bound, row_lower_bounds, seconds (+ objective, gap)")
    p.set_defaults(func=cmd_bound)


def cmd_bound(args) -> int:
    problem = load_instance(args.instance)
    start = load_mask(args.mask)[0] if args.mask else "wanda"
    settings = {"progress": bool(args.progress)}
    if args.newton_steps is not None:
        settings["newton_steps"] = args.newton_steps
    if args.workers is not None:
        settings["workers"] = args.workers
    if args.device is not None:
        settings["device"] = args.device
    t0 = time.perf_counter()
    result = solve("bound", problem, warm_start=start, time_limit=args.time_limit, **settings)
    seconds = time.perf_counter() - t0
    rows = [float(x) for x in result.row_lower_bounds]
    out = {"lower_bound": float(result.lower_bound), "row_lower_bounds": rows, "seconds": seconds,
           "instance_id": problem.instance_id(), "d_out": problem.d_out, "d_in": problem.d_in,
           "pattern": problem.pattern.describe(), "status": result.status,
           "newton_steps": result.settings.get("newton_steps"), "device": result.settings.get("device")}
    if args.mask:
        out["objective"] = result.objective
        out["gap"] = certified_gap(result.objective, result.lower_bound)
    if args.json:
        emit_json(out)  # a gap of inf (bound 0) becomes null
        return 0
    print(f"lower bound {out['lower_bound']:.10g} over {problem.d_out} rows in {seconds:.2f} s "
          f"({problem.pattern.describe()}, {out['newton_steps']} Newton steps per row, {out['device']})")
    cut = result.extra.get("row_status_counts", {}).get("time_limit", 0)
    if cut:
        print(f"{cut} of {problem.d_out} rows stopped at the time limit (rows never started keep the bound 0)")
    if args.mask:
        gap = out["gap"]
        print(f"mask objective {out['objective']:.10g}; certified gap "
              + ("unbounded (bound 0)" if not math.isfinite(gap) else f"{100 * gap:.2f} %"))
    return 0
