"""Do the torch solvers give the same answers on another device? Records here, compares there.

    python -m bench.studies.device_parity LAYERS/*.safetensors --device cpu  --out ref.json
    python -m bench.studies.device_parity LAYERS/*.safetensors --device cuda --reference ref.json --out cuda.json

Inputs: full-layer instance files (``maskbench extract``): this is how real layers reach a
machine without the model. For each layer it runs, on ``--device``:

* ``wanda+swap`` on the whole layer (the swap search on the device, float64 certification and
  verification as always): objective, sweeps, solve seconds (after one untimed warm-up solve,
  so the C++ kernel's build or the CUDA context is not counted);
* ``lns`` from that 1-swap mask and the certified ``bound`` on ``--rows`` seeded rows (the same
  rows on every device): per-row objectives and lower bounds, solve seconds.

With ``--reference`` (a JSON written by this script on another device or machine) it prints,
per layer, the relative differences of the objectives and bounds. What agreement means: every
objective is our float64 value of a verified mask, so the masks themselves may differ where
the float32 search meets a near-tie differently; a bound is certified on each device
separately, so both are valid and they differ by the rounding of the Newton path only. The
script reports the differences and fails (exit 1) only on an invalid result: a bound above the
same device's lns objective, or a refined mask worse than its start.
Times are wall seconds including the device synchronisation of each solve.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from bench.studies.gap_bracket import sample_rows
from solvers import load_instance, solve
from solvers.device import pick_device
from solvers.errors import MaskbenchError


def _timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t


def layer_record(path: str, device: torch.device, rows: int, seed: int, lns_time: float) -> dict:
    """Swap on the whole layer, lns and the bound on seeded rows, all on ``device``."""
    problem = load_instance(path)
    dev = str(device)
    wanda = solve("wanda", problem)
    solve("swap", problem, warm_start=wanda, device=dev, max_iters=2)  # warm-up: kernel build, CUDA context
    swap, swap_s = _timed(lambda: solve("swap", problem, warm_start=wanda, device=dev), device)
    picked = sample_rows(problem, rows, seed)  # the gap bracket's rows: a CPU generator, the same everywhere
    sub = problem.crop(picked, torch.arange(problem.d_in))
    start = solve("swap", sub, warm_start="wanda", device=dev)
    lns, lns_s = _timed(lambda: solve("lns", sub, start, seed=seed, device=dev, time_limit=lns_time), device)
    bound, bound_s = _timed(lambda: solve("bound", sub, start, device=dev, workers=1), device)
    return {"layer": Path(path).name, "instance_id": problem.instance_id(), "shape": [problem.d_out, problem.d_in],
            "wanda": wanda.objective, "swap": swap.objective, "swap_status": swap.status,
            "swap_sweeps": swap.extra["search_iterations"], "swap_seconds": swap_s,
            "rows": picked.tolist(), "row_swap": start.row_objectives.tolist(),
            "row_lns": lns.row_objectives.tolist(), "lns_seconds": lns_s,
            "row_bound": bound.row_lower_bounds.tolist(), "bound_seconds": bound_s}


def invalid(rec: dict) -> list[str]:
    """Results that no rounding can excuse: a bound above a feasible objective, a refiner worse than its start."""
    out = []
    if rec["swap"] > rec["wanda"] * (1 + 1e-12):
        out.append(f"{rec['layer']}: swap {rec['swap']:.6g} worse than wanda {rec['wanda']:.6g}")
    for r, s, lns, b in zip(rec["rows"], rec["row_swap"], rec["row_lns"], rec["row_bound"]):
        if lns > s * (1 + 1e-12):
            out.append(f"{rec['layer']} row {r}: lns {lns:.6g} worse than its 1-swap start {s:.6g}")
        if b > lns * (1 + 1e-9):
            out.append(f"{rec['layer']} row {r}: bound {b:.6g} above the lns objective {lns:.6g}")
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def compare_line(rec: dict, ref: dict) -> str:
    """One table line: relative differences against the reference record of the same instance."""
    rows_lns = max(_rel(a, b) for a, b in zip(rec["row_lns"], ref["row_lns"]))
    rows_bound = max(_rel(a, b) for a, b in zip(rec["row_bound"], ref["row_bound"]))
    ratio = sum(rec["row_bound"]) / sum(rec["row_swap"])
    return (f"| {rec['layer']} | {_rel(rec['swap'], ref['swap']):.1e} | {rec['swap_sweeps']} / {ref['swap_sweeps']} | "
            f"{rec['swap_seconds']:.2f} / {ref['swap_seconds']:.2f} | {rows_lns:.1e} | {rows_bound:.1e} | {ratio:.3f} | "
            f"{rec['bound_seconds'] / len(rec['rows']):.2f} / {ref['bound_seconds'] / len(ref['rows']):.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layers", nargs="+", help="full-layer instance files (maskbench extract)")
    ap.add_argument("--device", default="auto", help="cpu, cuda[:N] or auto (default: CUDA when present)")
    ap.add_argument("--rows", type=int, default=4, help="seeded rows for lns and the bound (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lns-time", type=float, default=30.0, help="lns seconds for the sampled rows (default 30)")
    ap.add_argument("--reference", default=None, help="JSON written by this script elsewhere: compare against it")
    ap.add_argument("--out", required=True, help="JSON file for this device's records (rewritten after each layer)")
    args = ap.parse_args(argv)
    try:
        device = pick_device(args.device)
        reference = {} if args.reference is None else {
            r["instance_id"]: r for r in json.loads(Path(args.reference).read_text())["records"]}
        missing = [p for p in args.layers if not os.path.isfile(p)]
        if missing:
            raise MaskbenchError(f"instance file not found: {missing[0]}")
    except (MaskbenchError, OSError, ValueError, KeyError) as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    doc = {"device": str(device), "device_name": name, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "records": []}
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
    bad: list[str] = []
    for path in args.layers:
        rec = layer_record(path, device, args.rows, args.seed, args.lns_time)
        doc["records"].append(rec)
        Path(args.out).write_text(json.dumps(doc, indent=1))
        bad += invalid(rec)
        print(f"{rec['layer']}: swap {rec['swap']:.6g} ({rec['swap_sweeps']} sweeps, {rec['swap_seconds']:.2f} s), "
              f"{len(rec['rows'])} rows: lns {rec['lns_seconds']:.1f} s, bound {rec['bound_seconds']:.1f} s "
              f"(bound / 1-swap {sum(rec['row_bound']) / sum(rec['row_swap']):.3f})", flush=True)
    if reference:
        print("\n| layer | swap objective rel. diff | sweeps here / ref | swap s here / ref | lns rows max rel. diff "
              "| bound rows max rel. diff | bound / 1-swap here | bound s per row here / ref |")
        print("|---|---|---|---|---|---|---|---|")
        for rec in doc["records"]:
            ref = reference.get(rec["instance_id"])
            print(compare_line(rec, ref) if ref and ref["rows"] == rec["rows"]
                  else f"| {rec['layer']} | no reference record with these rows |")
    for line in bad:
        print(f"INVALID: {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
