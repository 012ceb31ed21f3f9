"""Benchmark sub-commands: ``run``, ``report``, ``export``, ``compare``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd

from bench.store import DEFAULT_STORE, ResultStore


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=str(DEFAULT_STORE), help=f"results store (default: {DEFAULT_STORE})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a benchmark suite (default: quick) and write a report",
                       description="Run every (instance x solver configuration) task of a suite, committing each "
                                   "result to the store as it finishes. Rerunning at the same git commit resumes "
                                   "the latest run and skips finished tasks.")
    p.add_argument("suite", nargs="?", default="quick", help="built-in suite name (quick, gap, layers, paper, paper-full) or "
                                                              "a suite .toml file (default: quick)")
    _store_arg(p)
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    p.add_argument("--force", action="store_true", help="start a new run and recompute every task")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--dask-local", type=int, default=None, metavar="N", help="run on a Dask LocalCluster of N workers")
    p.add_argument("--threads-per-task", type=int, default=1, help="torch threads in each task (default 1)")
    p.add_argument("--report-dir", default=None, help="where to write the report (default: results/report-SUITE)")
    p.add_argument("--no-report", action="store_true", help="do not write a report after the run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="write Markdown + HTML report with figures for a run",
                       description="Tables and figures from stored results (never runs solvers).")
    p.add_argument("run", nargs="?", type=int, default=None, help="run id (default: latest)")
    _store_arg(p)
    p.add_argument("--out", default=None, help="output folder (default: report-SUITE beside the store)")
    p.add_argument("--formats", default="png,pdf",
                   help="figure formats, comma-separated from png, pdf, svg (default: png,pdf; PNG is always written)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="export one run's results to CSV",
                       description="Export a run (default: latest) as CSV, e.g. to commit as a regression baseline.")
    p.add_argument("run", nargs="?", type=int, default=None)
    _store_arg(p)
    p.add_argument("--csv", required=True, help="output CSV file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compare", help="regression gate between two result sets (exit 1 on regression)",
                       description="Match results by (instance, solver configuration) and flag objective "
                                   "increases beyond tolerance, status downgrades, verification failures and "
                                   "missing tasks. BASE and NEW are store files (latest run), FILE:RUN, or "
                                   "exported CSV baselines. Timings are reported only, when machines match.")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="relative objective tolerance for heuristics (default 1e-3 = 0.1%%; exact solvers: 1e-9)")
    p.add_argument("--allow-missing", action="store_true", help="do not gate on base tasks missing in NEW")
    p.add_argument("--out", default=None, help="also write the Markdown summary here")
    p.set_defaults(func=cmd_compare)


def _formats(text: str) -> tuple[str, ...]:
    """``"png,svg"`` → ``("png", "svg")``; a one-line error naming the unknown formats."""
    from reports.style import FORMATS
    from solvers.errors import MaskbenchError

    chosen = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise MaskbenchError(f"--formats: unknown figure format(s) {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(FORMATS)}")
    return chosen


def _report_header(store: ResultStore, run: dict) -> dict:
    return {"suite": run["suite"], "run": run["id"], "git_commit": run["git_commit"],
            "git_dirty": bool(run["git_dirty"]), "machine": json.loads(run["machine_json"]),
            "started": dt.datetime.fromtimestamp(run["started_at"]).isoformat(timespec="seconds"),
            "store": str(store.path)}


def report_rows(store: ResultStore, run: dict) -> pd.DataFrame:
    """The run's results plus, flagged ``_this = False``, other runs' results on the same instances:
    references use every result of the store (the best proven optimum known)."""
    results = pd.DataFrame(store.results(run["id"]))
    if results.empty:
        return results
    everything = pd.DataFrame(store.results())
    others = everything[everything["instance_id"].isin(results["instance_id"]) & (everything["run_id"] != run["id"])]
    results = results.assign(_this=True)
    return pd.concat([results, others.assign(_this=False)], ignore_index=True) if not others.empty else results


def write_report(store: ResultStore, run_id: int | None, out: str | Path | None = None,
                 formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Write the report of a run (default: latest) into ``out`` (default: ``report-SUITE`` beside the store)."""
    from reports.build import build_report

    run = store.run(run_id)
    out = Path(out) if out is not None else store.path.parent / f"report-{run['suite']}"
    prune = pd.DataFrame(store.prune_results(run["id"]))
    return build_report(report_rows(store, run), prune, _report_header(store, run), out, formats)


def cmd_run(args) -> int:
    from bench.runner import run_suite
    from bench.suites import load_suite

    suite = load_suite(args.suite)
    store = ResultStore(args.store)
    summary = run_suite(suite, store, workers=args.workers, force=args.force, scheduler=args.scheduler,
                        dask_local=args.dask_local, threads_per_task=args.threads_per_task,
                        log=lambda m: print(m, file=sys.stderr))
    print(f"run {summary.run_id}: {summary.total} tasks ({summary.skipped} already finished, "
          f"{summary.done} done now, {summary.errors} errors) in {store.path}")
    if not args.no_report:
        out = Path(args.report_dir or store.path.parent / f"report-{suite.name}")
        files = write_report(store, summary.run_id, out)
        gap = out / "report.md"
        print(f"report: {gap} and {out / 'report.html'} ({len(files) - 2} figure and table files)")
        _print_gap_summary(store, summary.run_id)
    return 0


def _print_gap_summary(store: ResultStore, run_id: int) -> None:
    from reports.build import prepare
    from reports.tables import gap_table

    frame = prepare(report_rows(store, store.run(run_id)))
    if not frame.empty:
        print(gap_table(frame).to_string())


def cmd_report(args) -> int:
    store = ResultStore(args.store, create=False)
    files = write_report(store, args.run, args.out, _formats(args.formats))
    for f in files:
        print(f)
    return 0


def cmd_export(args) -> int:
    from bench.export import export_csv

    n = export_csv(ResultStore(args.store, create=False), args.csv, args.run)
    print(f"wrote {n} results to {args.csv}")
    return 0


def cmd_compare(args) -> int:
    from bench.compare import compare, markdown
    from bench.export import load_source

    base, base_info = load_source(args.base)
    new, new_info = load_source(args.new)
    result = compare(base, new, base_info, new_info, heuristic_tol=args.tolerance, allow_missing=args.allow_missing)
    text = markdown(result, base_info, new_info)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if result.failed else 0
