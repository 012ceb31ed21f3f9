"""lns against 1-swap on whole layers: loss reduction and time, per-row 50 % and 2:4.

    python -m bench.cli extract --layers '*.3.self_attn.q_proj,*.27.self_attn.o_proj,…' --out LAYERS --crops 0
    python -m bench.studies.lns_layers LAYERS/*.safetensors --threads 2

For each full-layer instance file (crop files are skipped) and each pattern (``--patterns``:
``per-row`` = the file's own k, e.g. 50 %; ``2:4``): ``wanda+swap``, then ``lns`` from it with its
defaults (``--seed``). One markdown row per layer and pattern: the loss reduction of lns relative
to its 1-swap start, lns's solve seconds and 1-swap's (each solver's own solve time: excludes its
warm start, loading and the one-off kernel build; includes its float64 verification), and the
rows lns improved. Wall seconds on this machine, which may be shared; each record is appended to
``--out`` (JSON lines) as soon as it is computed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench.errors import InstanceFileError
from bench.paths import full_layer_files
from solvers import load_instance, solve
from solvers.pattern import NM, parse_pattern


def layer_record(problem, pattern_name: str, seed: int) -> dict:
    """1-swap and lns on one whole layer under one pattern."""
    if pattern_name != "per-row":
        pattern = parse_pattern(pattern_name)
        problem = problem.crop(torch.arange(problem.d_out), torch.arange(problem.d_in), pattern)
    swap = solve("wanda+swap", problem)
    lns = solve("lns", problem, swap, seed=seed)
    return {"layer": problem.metadata.get("layer", "?"), "pattern": pattern_name,
            "shape": [problem.d_out, problem.d_in], "nm": isinstance(problem.pattern, NM),
            "swap": swap.objective, "lns": lns.objective, "reduction": 1.0 - lns.objective / swap.objective,
            "swap_seconds": swap.solve_seconds, "lns_seconds": lns.solve_seconds,
            "improved_rows": lns.extra["improved_rows"], "backend": lns.settings["backend"]}


def markdown(records: list[dict], patterns: list[str]) -> str:
    """One row per layer, one column group per pattern: reduction / lns s / 1-swap s."""
    head = "| layer | rows × d | " + " | ".join(f"{p}: loss reduction vs 1-swap / lns s / 1-swap s"
                                                  for p in patterns) + " |"
    lines = [head, "|---|---|" + "---|" * len(patterns)]
    layers = list(dict.fromkeys(r["layer"] for r in records))
    for layer in layers:
        cells = []
        shape = ""
        for p in patterns:
            hit = [r for r in records if r["layer"] == layer and r["pattern"] == p]
            if not hit:
                cells.append("—")
                continue
            r = hit[0]
            shape = f"{r['shape'][0]} × {r['shape'][1]}"
            cells.append(f"{100 * r['reduction']:.2f} % / {r['lns_seconds']:.1f} / {r['swap_seconds']:.1f}")
        lines.append(f"| {layer.removeprefix('model.layers.')} | {shape} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.studies.lns_layers", description=__doc__.split("\n")[0])
    p.add_argument("layers", nargs="+", help="full-layer instance files (maskbench extract)")
    p.add_argument("--patterns", nargs="+", default=["per-row", "2:4"], help="per-row (the file's k) and/or N:M")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/lns-layers.jsonl", help="JSON lines of the records")
    args = p.parse_args(argv)
    for name in args.patterns:
        if name != "per-row":
            try:
                parse_pattern(name)
            except ValueError as exc:
                print(f"maskbench: error: --patterns: {exc}", file=sys.stderr)
                return 2
    try:
        paths = full_layer_files(args.layers)
    except InstanceFileError as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = []
    for path in paths:
        problem = load_instance(path)
        for name in args.patterns:
            rec = layer_record(problem, name, args.seed)
            with out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            records.append(rec)
            print(f"{rec['layer']} {name}: −{100 * rec['reduction']:.2f} % in {rec['lns_seconds']:.1f} s "
                  f"(1-swap {rec['swap_seconds']:.1f} s)", file=sys.stderr, flush=True)
    print(markdown(records, args.patterns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
