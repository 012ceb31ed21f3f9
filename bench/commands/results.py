"""Benchmark sub-commands: ``run``, ``report``, ``export``, ``compare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli_types import positive_int
from bench.paths import STDOUT, atomic_write_text, output_directory, output_file, store_files
from bench.reporting import write_report
from bench.store import DEFAULT_STORE, ResultStore


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=str(DEFAULT_STORE), help=f"results store (default: {DEFAULT_STORE})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a benchmark suite (default: quick) and write a report",
                       description="Run every (instance x solver configuration) task of a suite, committing each "
                                   "result to the store as it finishes. Rerunning at the same git commit resumes "
                                   "the latest run, skips finished tasks and retries tasks stored as errors; a "
                                   "run being executed by another live runner is refused.")
    p.add_argument("suite", nargs="?", default="quick", help="built-in suite name (quick, gap, layers, paper, paper-full) or "
                                                              "a suite .toml file (default: quick)")
    _store_arg(p)
    p.add_argument("--workers", type=positive_int, default=None, help="local worker processes (default: cores)")
    p.add_argument("--force", action="store_true", help="start a new run and recompute every task "
                                                             "(also when another runner executes the latest run)")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--dask-local", type=positive_int, default=None, metavar="N", help="run on a Dask LocalCluster of N workers")
    p.add_argument("--threads-per-task", type=positive_int, default=1, help="torch threads in each task (default 1)")
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
    p.add_argument("--csv", required=True, help="output CSV file ('-' for standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compare", help="regression gate between two result sets (exit 1 on regression)",
                       description="Match results by (portable instance key, solver configuration) and flag "
                                   "objective increases beyond tolerance, status downgrades, verification failures, "
                                   "changed instance content and missing tasks; refuse (exit 2) to compare "
                                   "nothing, other suites or duplicated tasks. BASE and NEW are store files "
                                   "(latest run), FILE:RUN, or exported CSV baselines. Timings are reported only, "
                                   "when machines match.")
    p.add_argument("base")
    p.add_argument("new")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="relative objective tolerance for heuristics, finite and >= 0 (default 1e-3 = 0.1%%; "
                        "proven optima: 1e-9, or the solver's gap_tol if larger)")
    p.add_argument("--allow-missing", action="store_true", help="do not gate on base tasks missing in NEW")
    p.add_argument("--allow-content-change", action="store_true",
                   help="do not gate on instances whose numbers changed under the same portable key")
    p.add_argument("--out", default=None, help="also write the Markdown summary here")
    p.set_defaults(func=cmd_compare)


def report_file(name: str) -> bool:
    """Whether ``maskbench report`` may write a file of this name into its folder."""
    return name in ("report.md", "report.html") or Path(name).suffix in (".tex", ".png", ".pdf", ".svg")


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


def cmd_run(args) -> int:
    from bench.runner import run_suite
    from bench.suites import load_suite

    suite = load_suite(args.suite)
    if not args.no_report:  # before any work: a report folder that cannot be written fails now, not after the run
        output_directory(args.report_dir or Path(args.store).parent / f"report-{suite.name}", *store_files(args.store),
                         writes=report_file)
    store = ResultStore(args.store)
    summary = run_suite(suite, store, workers=args.workers, force=args.force, scheduler=args.scheduler,
                        dask_local=args.dask_local, threads_per_task=args.threads_per_task,
                        log=lambda m: print(m, file=sys.stderr))
    retried = f"{summary.retried} of them retried errors, " if summary.retried else ""
    print(f"run {summary.run_id}: {summary.total} tasks ({summary.skipped} already finished, "
          f"{summary.done} done now, {retried}{summary.errors} stored as error) in {store.path}")
    if not args.no_report:
        out = Path(args.report_dir or store.path.parent / f"report-{suite.name}")
        try:
            report = write_report(store, summary.run_id, out)
        except OSError as exc:
            raise OSError(f"the results are stored in {store.path} (run {summary.run_id}), but the report could "
                          f"not be written to {out}: {exc.strerror or exc}; write it with "
                          f"'maskbench report {summary.run_id} --store {store.path} --out DIR'") from None
        print(f"report: {out / 'report.md'} and {out / 'report.html'} ({len(report.files) - 2} figures)")
        if not report.gap.empty:
            print(report.gap.to_string())
    return 0


def cmd_report(args) -> int:
    store = ResultStore(args.store, create=False)
    formats = _formats(args.formats)
    if args.out is not None:
        output_directory(args.out, *store_files(store.path), writes=report_file)
    for f in write_report(store, args.run, args.out, formats).files:
        print(f)
    return 0


def cmd_export(args) -> int:
    from bench.export import export_csv

    n = export_csv(ResultStore(args.store, create=False), args.csv, args.run)
    print(f"wrote {n} results to {'standard output' if args.csv == STDOUT else args.csv}",
          file=sys.stderr if args.csv == STDOUT else sys.stdout)
    return 0


def cmd_compare(args) -> int:
    from bench.compare import compare, markdown
    from bench.export import load_source

    base, base_info = load_source(args.base)
    new, new_info = load_source(args.new)
    target = output_file(args.out, *store_files(base_info["source"]), *store_files(new_info["source"])) if args.out else None
    result = compare(base, new, base_info, new_info, heuristic_tol=args.tolerance, allow_missing=args.allow_missing,
                     allow_content_change=args.allow_content_change)
    text = markdown(result, base_info, new_info)
    print(text)
    if target is not None:
        atomic_write_text(target, text)
    return 1 if result.failed else 0
