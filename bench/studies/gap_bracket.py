"""How far is 1-swap from optimal? The gap bracket on full rows, and lns against proven optima on crops.

    python -m bench.cli extract --layers '*.3.self_attn.q_proj,*.27.self_attn.o_proj,…' --out LAYERS
    python -m bench.studies.gap_bracket LAYERS/*.safetensors --rows 8 --out results/gap-bracket

Inputs: full-layer instance files written by ``maskbench extract`` (crop files are skipped).

**Full rows** (``--rows`` seeded rows of each layer, all columns, the layer's pattern):
``wanda+swap``, then ``lns`` from it, then the certified bound (solver ``bound``,
``--newton-steps``, ``--relaxation shor|dnn``, ``--dnn-steps``). Per layer type the bracket
``[S/L − 1, S/B − 1]`` of 1-swap's excess over the optimum (:mod:`reports.gap_bracket`), written as a markdown table and a figure.

**Crops** (``--crop-d``, ``--crop-rows`` seeded rows × seeded columns, k = d/2):
``wanda+swap``, ``lns`` and ``sdpbb`` (proved optimum, ``--exact-time-limit`` per row) →
the share of 1-swap's total excess over the proven optima that lns closes, and the
ratio of lns's solve time to 1-swap's (solve seconds of each refiner: excludes its warm
start and the one-off kernel build, includes its float64 verification).

Every record is appended to ``records.jsonl`` in ``--out`` as soon as it is computed (an
interrupted run keeps what it did). Times are wall seconds on this machine, which may be shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bench.errors import InstanceFileError, OutputPathError
from bench.paths import atomic_write_text, full_layer_files, output_directory
from reports.gap_bracket import RELAXATION_ORDER, bracket, bracket_by_relaxation, bracket_figure, bracket_table, relaxation_table
from solvers import load_instance, solve
from solvers.exact import row_selection
from solvers.pattern import PerRow


def sample_rows(problem, count: int, seed: int) -> torch.Tensor:
    """The rows of ``maskbench bound --rows count --seed seed`` (:func:`solvers.exact.row_selection.sample_rows`)."""
    return row_selection.sample_rows(problem.d_out, count, seed)


def full_rows(problem, args) -> list[dict]:
    rows = sample_rows(problem, args.rows, args.seed)
    sub = problem.crop(rows, torch.arange(problem.d_in))
    swap = solve("wanda+swap", sub)
    lns = solve("lns", sub, swap, seed=args.seed)
    bound = solve("bound", sub, swap, newton_steps=args.newton_steps, workers=args.workers, relaxation=args.relaxation,
                  dnn_steps=args.dnn_steps, dnn_method=args.dnn_method, row_time_limit=args.row_time_limit)
    seconds = bound.extra.get("row_seconds", [])
    return [{"part": "full", "layer": problem.metadata.get("layer", "?"),
             "layer_type": problem.metadata.get("layer_type", "?"), "block": problem.metadata.get("block", "?"),
             "row": int(r), "d": problem.d_in, "relaxation": args.relaxation, "swap": float(swap.row_objectives[i]),
             "lns": float(lns.row_objectives[i]), "bound": float(bound.row_lower_bounds[i]),
             "bound_seconds": seconds[i] if i < len(seconds) else None,
             "lns_seconds_share": lns.solve_seconds / len(rows), "swap_seconds_share": swap.solve_seconds / len(rows)}
            for i, r in enumerate(rows.tolist())]


def crop_record(problem, d: int, args) -> dict:
    g = torch.Generator().manual_seed(args.seed * 100_003 + d)
    cols = torch.sort(torch.randperm(problem.d_in, generator=g)[:d]).values
    rows = torch.sort(torch.randperm(problem.d_out, generator=g)[:args.crop_rows]).values
    crop = problem.crop(rows, cols, PerRow(d // 2))
    swap = solve("wanda+swap", crop)
    lns = solve("lns", crop, swap, seed=args.seed)
    exact = solve("sdpbb", crop, lns, time_limit=args.exact_time_limit * args.crop_rows, workers=1,
                  row_time_limit=args.exact_time_limit)
    return {"part": "crop", "layer": problem.metadata.get("layer", "?"),
            "layer_type": problem.metadata.get("layer_type", "?"), "d": d, "rows": args.crop_rows,
            "swap": swap.objective, "lns": lns.objective, "optimum": exact.objective,
            "proved": exact.status == "optimal", "swap_seconds": swap.solve_seconds,
            "lns_seconds": lns.solve_seconds}


def crop_summary(records: list[dict]) -> str:
    crops = pd.DataFrame([r for r in records if r["part"] == "crop"])
    if crops.empty:
        return ""
    lines = ["| layer type | d | crops proved | 1-swap excess over optimum | closed by lns | lns time / 1-swap time |",
             "|---|---|---|---|---|---|"]
    for (lt, d), part in crops.groupby(["layer_type", "d"], sort=True):
        lines.append(_crop_line(f"{lt} | {d}", part))
    lines.append(_crop_line("**all** | all", crops))
    return "\n".join(lines)


def _crop_line(label: str, part: pd.DataFrame) -> str:
    proved = part[part["proved"]]
    excess = (proved["swap"] - proved["optimum"]).sum()
    closed = (proved["swap"] - proved["lns"]).sum()
    share = f"{100 * closed / excess:.0f} %" if excess > 0 else "— (1-swap optimal)"
    ratio = part["lns_seconds"].sum() / max(part["swap_seconds"].sum(), 1e-12)
    return (f"| {label} | {len(proved)}/{len(part)} | {100 * excess / proved['optimum'].sum():.3f} % | "
            f"{share} | {ratio:.1f}× |")


SUMMARY_FILES = ("summary.md", "gap_bracket.png")
"""What :func:`summarise` writes into its folder."""


def summarise(records: list[dict], out: Path) -> str:
    """Write ``summary.md`` and ``gap_bracket.png`` into ``out`` from full-row and crop records; returns the
    summary. Records of several relaxations on the same rows (runs with ``--relaxation shor`` and
    ``dnn``, combined by ``--from-records``) give one column per relaxation, and the figure marks the weaker
    bound's certified end beside the strongest bracket."""
    text = []
    full = pd.DataFrame([r for r in records if r["part"] == "full"])
    if not full.empty:
        if "relaxation" not in full:
            full["relaxation"] = "shor"
        by_relaxation = bracket_by_relaxation(full)
        present = [r for r in RELAXATION_ORDER if r in set(full["relaxation"])] or sorted(set(full["relaxation"]))
        strongest = full[full["relaxation"] == present[-1]]
        summary = bracket(strongest)
        weaker = by_relaxation[by_relaxation["relaxation"] == present[0]] if len(present) > 1 else None
        text += [f"## Gap bracket of 1-swap on full rows ({present[-1]} bound)", "", bracket_table(summary), ""]
        if weaker is not None:
            text += ["## Certified end by relaxation", "", relaxation_table(by_relaxation), ""]
        bracket_figure(summary, out / "gap_bracket.png", weaker, present[-1], present[0])
        bound = full["bound"].where(full["bound"] > 0)
        per_row = (full["swap"] / full["lns"]) - 1 <= (full["swap"] / bound) - 1
        text += [f"rows where found ≤ certified: {int(per_row.sum())}/{len(full)}; bound seconds per row: median "
                 f"{strongest['bound_seconds'].median():.2f} ({present[-1]})", ""]
    crops = crop_summary(records)
    if crops:
        text += ["## lns against proven optima on crops (k = d/2)", "", crops, ""]
    atomic_write_text(out / "summary.md", "\n".join(text))
    return "\n".join(text)


def read_records(paths: list[str]) -> list[dict]:
    """Records of earlier runs (``records.jsonl``), in order; a missing or malformed file is an
    :class:`InstanceFileError` naming it."""
    records = []
    for name in paths:
        path = Path(name)
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise InstanceFileError(f"cannot read records file {path}: {exc.strerror or exc}") from None
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise InstanceFileError(f"{path}:{number}: not a JSON record") from None
            if not isinstance(record, dict) or "part" not in record:
                raise InstanceFileError(f"{path}:{number}: not a gap-bracket record")
            records.append(record)
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.studies.gap_bracket", description=__doc__.split("\n")[0])
    p.add_argument("layers", nargs="*", help="full-layer instance files (maskbench extract)")
    p.add_argument("--from-records", nargs="+", metavar="RECORDS", default=None,
                   help="compute nothing: summarise the records.jsonl of earlier runs (e.g. one with --relaxation shor "
                        "and one with dnn on the same rows) into --out")
    p.add_argument("--rows", type=int, default=8, help="full rows per layer (default 8)")
    p.add_argument("--newton-steps", type=int, default=30, help="Newton steps of the bound per row (default 30)")
    p.add_argument("--relaxation", choices=("shor", "dnn"), default="shor",
                   help="the bound's relaxation (default shor; dnn: the doubly-nonnegative bound by the splitting "
                        "method, about 70 s per 576-column row)")
    p.add_argument("--dnn-method", choices=("admm", "barrier"), default="admm",
                   help="the dnn bound's method (default admm; barrier: the active-set barrier method, 15-30 s per row)")
    p.add_argument("--dnn-steps", type=int, default=None,
                   help="budget of the dnn stage per row (default: 1200 admm iterations or 100 barrier Newton steps)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (default 1: on a shared machine, tiny multi-threaded ops "
                        "wait for each other and distort the refiners' times)")
    p.add_argument("--crop-d", type=int, nargs="*", default=[32, 48, 64, 96], help="crop widths (none: skip crops)")
    p.add_argument("--crop-rows", type=int, default=4)
    p.add_argument("--exact-time-limit", type=float, default=60.0, help="sdpbb seconds per crop row (default 60)")
    p.add_argument("--no-full", action="store_true", help="skip the full-row bracket")
    p.add_argument("--workers", type=int, default=2, help="row processes of the bound (default 2)")
    p.add_argument("--row-time-limit", type=float, default=120.0,
                   help="seconds of the bound per full row (default 120; its best certificate so far is kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/gap-bracket", help="output folder (records, table, figure)")
    args = p.parse_args(argv)
    if args.from_records is not None and args.layers:
        p.error("give either layer files or --from-records, not both")
    out = Path(args.out)
    try:
        if args.from_records is not None:
            records = read_records(args.from_records)
            out = output_directory(out, *args.from_records, writes=lambda name: name in SUMMARY_FILES)
            print(summarise(records, out))
            return 0
        paths = full_layer_files(args.layers)
    except (InstanceFileError, OutputPathError, OSError) as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "records.jsonl"
    records: list[dict] = []
    t0 = time.perf_counter()
    for path in paths:
        problem = load_instance(path)
        name = problem.metadata.get("layer", path.stem)
        todo = [] if args.no_full else [("full", None)]
        todo += [("crop", d) for d in args.crop_d]
        for part, d in todo:
            t = time.perf_counter()
            new = full_rows(problem, args) if part == "full" else [crop_record(problem, d, args)]
            with log.open("a") as fh:
                for r in new:
                    fh.write(json.dumps(r) + "\n")
            records += new
            print(f"[{time.perf_counter() - t0:7.0f} s] {name} {part}{'' if d is None else f' d={d}'}: "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
    print(summarise(records, out))
    print(f"total wall time {time.perf_counter() - t0:.0f} s; records in {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
