"""Frontier of the certified bound on full rows: bound quality against seconds per row, by layer type.

    python -m bench.cli extract --layers '*.3.self_attn.q_proj,…' --out LAYERS --crops 0
    python -m bench.studies.bound_frontier LAYERS/*.safetensors --rows 4 --newton-steps 10 20 40 80 --out OUT

For each full-layer instance file (crop files are skipped): ``--rows`` seeded rows (all columns,
the layer's pattern; the rows of :func:`bench.studies.gap_bracket.sample_rows`), ``wanda+swap`` on them,
then the solver ``bound`` from that mask at each ``--newton-steps`` budget (each budget runs the
bound's barrier starts from scratch). Per layer type and budget: bound / 1-swap loss, the
certified gap it implies and the median seconds per row (:mod:`reports.bound_frontier`), written
as ``summary.md`` and ``bound_frontier.png`` in ``--out``; every record is appended to
``records.jsonl`` as soon as it is computed. Seconds are each row's wall time in its row process
(one thread), on this machine, which may be shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bench.errors import InstanceFileError
from bench.paths import full_layer_files
from bench.studies.gap_bracket import sample_rows
from reports.bound_frontier import frontier, frontier_figure, frontier_table
from solvers import load_instance, solve


def layer_records(problem, args) -> list[dict]:
    """1-swap on the sampled rows, then the bound at every budget: one record per row and budget."""
    rows = sample_rows(problem, args.rows, args.seed)
    sub = problem.crop(rows, torch.arange(problem.d_in))
    swap = solve("wanda+swap", sub)
    records = []
    for steps in args.newton_steps:
        bound = solve("bound", sub, swap, newton_steps=steps, workers=args.workers)
        seconds = bound.extra.get("row_seconds", [])
        records += [{"layer": problem.metadata.get("layer", "?"), "layer_type": problem.metadata.get("layer_type", "?"),
                     "d": problem.d_in, "row": int(r), "newton_steps": steps, "swap": float(swap.row_objectives[i]),
                     "bound": float(bound.row_lower_bounds[i]),
                     "seconds": seconds[i] if i < len(seconds) else None}
                    for i, r in enumerate(rows.tolist())]
    return records


def collect_records(paths: list[Path], records_of, args, out: Path) -> list[dict]:
    """``records_of(problem, args)`` for each layer file in turn, each layer's records appended to
    ``out/records.jsonl`` as soon as they exist (nothing lost on interruption), with progress on stderr."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "records.jsonl"
    records: list[dict] = []
    t0 = time.perf_counter()
    for path in paths:
        problem = load_instance(path)
        new = records_of(problem, args)
        with log.open("a") as fh:
            for r in new:
                fh.write(json.dumps(r) + "\n")
        records += new
        print(f"[{time.perf_counter() - t0:7.0f} s] {problem.metadata.get('layer', path.stem)}", file=sys.stderr,
              flush=True)
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.studies.bound_frontier", description=__doc__.split("\n")[0])
    p.add_argument("layers", nargs="+", help="full-layer instance files (maskbench extract)")
    p.add_argument("--rows", type=int, default=4, help="rows per layer (default 4)")
    p.add_argument("--newton-steps", type=int, nargs="+", default=[10, 20, 40, 80],
                   help="bound budgets in Newton steps per start (default 10 20 40 80)")
    p.add_argument("--workers", type=int, default=2, help="row processes of the bound (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/bound-frontier", help="output folder (records, table, figure)")
    args = p.parse_args(argv)
    if args.rows < 1 or args.workers < 1 or any(s < 1 for s in args.newton_steps):
        print("maskbench: error: --rows, --workers and --newton-steps must be positive", file=sys.stderr)
        return 2
    try:
        paths = full_layer_files(args.layers)
    except InstanceFileError as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    records = collect_records(paths, layer_records, args, out)
    summary = frontier(pd.DataFrame(records))
    frontier_figure(summary, out / "bound_frontier.png")
    text = "## Certified bound / 1-swap loss (certified gap of 1-swap, median seconds per row)\n\n" + \
        frontier_table(summary) + "\n"
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
