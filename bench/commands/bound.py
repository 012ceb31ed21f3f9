"""``bound``: certified per-row and total lower bounds of an instance (solver ``bound``)."""

from __future__ import annotations

import argparse
import math
import time

from bench.cli_types import non_negative_int, positive_float, positive_int, row_spec
from bench.jsonout import emit_json
from solvers import load_instance, load_mask, solve
from solvers.exact.layer_bound import certified_gap
from solvers.exact.row_selection import select_rows


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bound", help="certified lower bounds of an instance (and a mask's certified gap)",
                       description="Per-row certified lower bounds (Shor SDP or, with --relaxation dnn, the "
                                   "doubly-nonnegative bound; a budget of barrier-Newton steps "
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
    p.add_argument("--relaxation", choices=("shor", "dnn"), default="shor",
                   help="shor (default): the Shor SDP bound; dnn: then the doubly-nonnegative bound (Shor plus the "
                        "RLT pair inequalities; see solvers/exact/dnn_bound.py), never below shor, slower")
    p.add_argument("--dnn-method", choices=("admm", "barrier"), default="admm",
                   help="how the dnn bound is computed: admm (default): a splitting method over all pair inequalities "
                        "(solvers/exact/dnn_admm.py), its dual certified; barrier: the active-set barrier method "
                        "(solvers/exact/dnn_bound.py), faster and weaker")
    p.add_argument("--dnn-steps", type=positive_int, default=None,
                   help="budget of the dnn stage per row: admm iterations (default 1200: about 70 s on a 576-column "
                        "row, one thread) or barrier Newton steps (default 100: 15-30 s)")
    p.add_argument("--rows", type=row_spec, default=None,
                   help="bound only these rows: N = a sample of N rows drawn with --seed, A:B = rows A..B-1 "
                        "(a sample's or range's total is not the layer's bound)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the --rows sample (default 0)")
    p.add_argument("--workers", type=positive_int, default=None, help="row processes (default: all CPUs)")
    p.add_argument("--device", default=None,
                   help="cpu (default) or cuda[:N]: where the per-row algebra runs (on CUDA rows run in one process)")
    p.add_argument("--progress", action="store_true", help="progress bar over rows (stderr)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: rows, row_lower_bounds (aligned with rows), seconds, sample, "
                        "selection, and lower_bound (all rows) or selected_lower_bound (--rows) (+ objective, gap)")
    p.set_defaults(func=cmd_bound)


def cmd_bound(args) -> int:
    problem = load_instance(args.instance)
    selection = select_rows(args.rows, problem.d_out, args.seed)  # a bad range: one-line error before any work
    start = load_mask(args.mask)[0] if args.mask else "wanda"
    settings = {"progress": bool(args.progress), "relaxation": args.relaxation}
    if args.relaxation == "dnn":
        settings["dnn_method"] = args.dnn_method
    if args.rows is not None:
        settings["rows"] = args.rows
    if args.newton_steps is not None:
        settings["newton_steps"] = args.newton_steps
    if args.dnn_steps is not None:
        settings["dnn_steps"] = args.dnn_steps
    if args.workers is not None:
        settings["workers"] = args.workers
    if args.device is not None:
        settings["device"] = args.device
    t0 = time.perf_counter()
    result = solve("bound", problem, warm_start=start, time_limit=args.time_limit, seed=args.seed, **settings)
    seconds = time.perf_counter() - t0
    rows = selection.rows
    bounds = [float(result.row_lower_bounds[i]) for i in rows.tolist()]
    total = float(sum(bounds))
    out = {"rows": rows.tolist(), "row_lower_bounds": bounds, "seconds": seconds, "sample": selection.sample,
           "selection": selection.label, "instance_id": problem.instance_id(), "d_out": problem.d_out,
           "d_in": problem.d_in, "pattern": problem.pattern.describe(), "status": result.status,
           "relaxation": args.relaxation, "newton_steps": result.settings.get("newton_steps"),
           "dnn_steps": result.settings.get("dnn_steps") if args.relaxation == "dnn" else None,
           "dnn_method": args.dnn_method if args.relaxation == "dnn" else None,
           "device": result.settings.get("device")}
    out["lower_bound" if selection.everything else "selected_lower_bound"] = total
    if args.mask:
        objective = float(result.row_objectives[rows].sum())
        out["objective"] = objective
        out["gap"] = certified_gap(objective, total)
    if args.json:
        emit_json(out)  # a gap of inf (bound 0) becomes null
        return 0
    where = f"over {problem.d_out} rows" if selection.everything else \
        f"over {selection.label} (bound of these rows only, not of the layer)"
    steps = f"{out['newton_steps']} Newton steps per row" + \
        (f" + {out['dnn_steps']} dnn {out['dnn_method']} steps" if out["dnn_steps"] else "")
    print(f"lower bound {total:.10g} {where} in {seconds:.2f} s "
          f"({args.relaxation}, {problem.pattern.describe()}, {steps}, {out['device']})")
    cut = result.extra.get("row_status_counts", {}).get("time_limit", 0)
    if cut:
        print(f"{cut} of {len(rows)} rows stopped at the time limit (rows never started keep the bound 0)")
    if args.mask:
        gap = out["gap"]
        scope = "" if selection.everything else " on these rows"
        print(f"mask objective{scope} {out['objective']:.10g}; certified gap "
              + ("unbounded (bound 0)" if not math.isfinite(gap) else f"{100 * gap:.2f} %"))
    return 0
