"""Shor against the doubly-nonnegative bound on full rows: bound / 1-swap loss and seconds per row.

    python -m bench.cli extract --layers '*.3.self_attn.q_proj,…' --out LAYERS --crops 0
    python -m bench.studies.dnn_frontier LAYERS/*.safetensors --rows 3 --dnn-steps 100 400 --admm-steps 600 --out OUT

For each full-layer instance file (crop files are skipped): ``--rows`` seeded rows (all columns, the
layer's pattern; the rows of :func:`solvers.exact.row_selection.sample_rows`), ``wanda+swap`` on
them, then the solver ``bound`` from that mask with ``relaxation="shor"``, with ``relaxation="dnn"``,
``dnn_method="barrier"`` at each ``--dnn-steps`` budget (Newton steps; records labelled ``dnn``) and
with ``dnn_method="admm"`` at each ``--admm-steps`` budget (splitting iterations; labelled
``dnn-admm``). Each run starts from scratch: the DNN stage follows the same Shor ascent.
``--row-time-limit`` caps every row's bound. One row process, one thread. Every
record is appended to ``records.jsonl`` in ``--out`` as soon as it is computed; ``summary.md`` and
``dnn_frontier.png`` (:mod:`reports.bound_frontier`) follow at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from bench.errors import InstanceFileError
from bench.paths import full_layer_files
from bench.studies.bound_frontier import collect_records
from reports.bound_frontier import relaxation_figure, relaxation_summary, relaxation_table
from solvers import solve
from solvers.exact.row_selection import sample_rows


def layer_records(problem, args) -> list[dict]:
    """1-swap on the sampled rows, then the Shor bound and the DNN bound at each budget."""
    rows = sample_rows(problem.d_out, args.rows, args.seed)
    sub = problem.crop(rows, torch.arange(problem.d_in))
    swap = solve("wanda+swap", sub)
    runs = [("shor", "admm", 0)] + [("dnn", "barrier", steps) for steps in args.dnn_steps] + \
        [("dnn-admm", "admm", steps) for steps in args.admm_steps]
    records = []
    for label, method, steps in runs:
        relaxation = "shor" if label == "shor" else "dnn"
        bound = solve("bound", sub, swap, relaxation=relaxation, dnn_method=method, dnn_steps=steps, workers=1,
                      row_time_limit=args.row_time_limit)
        seconds = bound.extra.get("row_seconds", [])
        records += [{"layer": problem.metadata.get("layer", "?"), "layer_type": problem.metadata.get("layer_type", "?"),
                     "d": problem.d_in, "row": int(r), "relaxation": label, "dnn_steps": steps,
                     "swap": float(swap.row_objectives[i]), "bound": float(bound.row_lower_bounds[i]),
                     "seconds": seconds[i] if i < len(seconds) else None}
                    for i, r in enumerate(rows.tolist())]
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.studies.dnn_frontier", description=__doc__.split("\n")[0])
    p.add_argument("layers", nargs="+", help="full-layer instance files (maskbench extract)")
    p.add_argument("--rows", type=int, default=3, help="rows per layer (default 3)")
    p.add_argument("--dnn-steps", type=int, nargs="*", default=[100],
                   help="barrier DNN budgets in Newton steps (default 100; none to skip)")
    p.add_argument("--admm-steps", type=int, nargs="*", default=[1200],
                   help="splitting DNN budgets in iterations (default 1200; none to skip)")
    p.add_argument("--row-time-limit", type=float, default=120.0, help="seconds per row and run (default 120)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/dnn-frontier", help="output folder (records, table, figure)")
    args = p.parse_args(argv)
    if args.rows < 1 or any(s < 1 for s in args.dnn_steps + args.admm_steps) or not args.row_time_limit > 0:
        print("maskbench: error: --rows, --dnn-steps, --admm-steps and --row-time-limit must be positive", file=sys.stderr)
        return 2
    try:
        paths = full_layer_files(args.layers)
    except InstanceFileError as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    records = collect_records(paths, layer_records, args, out)
    summary = relaxation_summary(pd.DataFrame(records))
    relaxation_figure(summary, out / "dnn_frontier.png")
    text = "## Certified bound / 1-swap loss by relaxation (certified gap of 1-swap, median seconds per row)\n\n" + \
        relaxation_table(summary) + "\n"
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
