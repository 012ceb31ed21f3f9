"""Would the doubly-nonnegative bound pay inside ``sdpbb``? Root bounds against proven optima on real rows.

    python -m bench.studies.root_bounds --d 256 --seeds 0 1 2 --time-limit 600 --out OUT

The rows are ``bench.studies.exact_speed``'s real rows (a seeded crop of ``d`` input channels and one
output row of SmolLM2-135M layer-10 q_proj, k = d/2; the same seeds give the same rows). Per row, from
the ``wanda+swap`` mask:

* ``sdpbb`` (one process, ``--time-limit`` seconds): the optimum ``O`` when proved (else its best
  mask and bound), the nodes and the wall seconds of the whole tree;
* the root bound ``B`` of the solver ``bound`` with ``relaxation="shor"`` (the relaxation ``sdpbb``
  bounds every node with) and with ``relaxation="dnn"`` (the splitting method of
  :mod:`solvers.exact.dnn_admm`, ``--dnn-steps`` iterations), each with its seconds.

Printed per row: ``B / O`` for both, the share of Shor's root gap ``O − B_shor`` that the DNN bound
closes, and the DNN root's seconds against the tree's seconds per node. A node bound is worth its
price only when it closes nodes' gaps for less than the subtree it saves; the ratio of one DNN root to
the whole tree's time answers that to first order. Every record goes to ``records.jsonl`` in ``--out``
as it is computed. Times are wall seconds of one thread on this machine, which may be shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.studies.exact_speed import CACHE, real_row
from solvers import solve
from solvers.registry import resolve_warm_start


def root_record(problem, d: int, seed: int, args) -> dict:
    """One row: the tree, then both root bounds from the same warm start (see the module docstring)."""
    warm = resolve_warm_start(problem, "wanda+swap", seed)
    tree = solve("sdpbb", problem, warm_start=warm, time_limit=args.time_limit, seed=seed, workers=1, threads=1)
    out = {"d": d, "seed": seed, "swap": warm.objective, "status": tree.status, "optimum": tree.objective,
           "tree_bound": tree.lower_bound, "nodes": tree.nodes,
           "tree_seconds": tree.extra.get("wall_seconds", tree.solve_seconds)}
    for relaxation in ("shor", "dnn"):
        t0 = time.perf_counter()
        own = {"dnn_steps": args.dnn_steps} if relaxation == "dnn" and args.dnn_steps else {}
        bound = solve("bound", problem, warm_start=warm, seed=seed, workers=1, threads=1, relaxation=relaxation, **own)
        out[f"{relaxation}_bound"] = bound.lower_bound
        out[f"{relaxation}_seconds"] = time.perf_counter() - t0
    return out


def describe(r: dict) -> str:
    """One printed line of a record."""
    opt, shor, dnn = r["optimum"], r["shor_bound"], r["dnn_bound"]
    closed = (dnn - shor) / (opt - shor) if opt > shor else float("nan")
    per_node = r["tree_seconds"] / max(r["nodes"] or 1, 1)
    proved = "proved" if r["status"] == "optimal" else f"{r['status']} (best mask, bound {r['tree_bound']:.6g})"
    return (f"d={r['d']} seed={r['seed']}: tree {proved}, {r['tree_seconds']:.1f} s, {r['nodes']} nodes "
            f"({1000 * per_node:.1f} ms/node); root shor {shor / opt:.4f} of O in {r['shor_seconds']:.1f} s, "
            f"dnn {dnn / opt:.4f} in {r['dnn_seconds']:.1f} s (closes {100 * closed:.0f} % of shor's root gap; "
            f"one dnn root = {r['dnn_seconds'] / max(r['tree_seconds'], 1e-9):.2f} × the whole tree, "
            f"{r['dnn_seconds'] / per_node:.0f} nodes' time)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.studies.root_bounds", description=__doc__.split("\n")[0])
    p.add_argument("--d", type=int, nargs="+", default=[256], help="row widths (default 256)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="row seeds (default 0 1 2)")
    p.add_argument("--time-limit", type=float, default=600.0, help="sdpbb seconds per row (default 600)")
    p.add_argument("--dnn-steps", type=int, default=None, help="splitting iterations of the dnn bound (default: its own)")
    p.add_argument("--cache", default=str(CACHE), help="cached real-layer instance file (made on first use)")
    p.add_argument("--out", default="results/root-bounds", help="output folder (records.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from bench.studies.exact_layer import real_layer

    layer = real_layer(Path(args.cache))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in args.d:
        for seed in args.seeds:
            record = root_record(real_row(layer, d, seed), d, seed, args)
            with (out / "records.jsonl").open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(describe(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
