"""Store queries that feed a report: read a run once, prepare it once, hand ``reports/`` frames.

A report of run ``R`` shows R's results; the reference value of each instance (best proven
optimum, else best known objective) is taken over *every* result of the store on that
instance, so rows of other runs on the same instances are read too, flagged ``_this =
False``, and dropped by :func:`reports.build.prepare` after the references are computed.
:mod:`reports` itself never opens the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.machine import stored_machine
from bench.store import ResultStore
from bench.store_checks import check_run
from solvers.registry import chain_name


@dataclass
class ReportInputs:
    """Everything a report is made of, as plain data."""

    frame: pd.DataFrame   # this run's results, prepared (gaps to references over the whole store)
    prune: pd.DataFrame   # this run's whole-model pruning rows
    header: dict          # suite, run id, commit, machine, start time, store path


@dataclass
class WrittenReport:
    files: list[Path]     # report.md, report.html, then the figures
    gap: pd.DataFrame     # the gap table (solver × family); empty when the run has no results


def report_header(store: ResultStore, run: dict) -> dict:
    """The run record as the report's header fields."""
    return {"suite": run["suite"], "run": run["id"], "git_commit": run["git_commit"],
            "git_dirty": bool(run["git_dirty"]), "machine": stored_machine(run["machine_json"]),
            "started": dt.datetime.fromtimestamp(run["started_at"]).isoformat(timespec="seconds"),
            "store": str(store.path)}


def report_rows(store: ResultStore, run: dict) -> pd.DataFrame:
    """The run's results plus, flagged ``_this = False``, other runs' results on the same instances
    (same portable key): references use every result of the store (the best proven optimum known)."""
    results = pd.DataFrame(store.results(run["id"]))
    if results.empty:
        return results
    everything = pd.DataFrame(store.results())
    # other runs may have rebuilt the same instance on another CPU (other float bits, other content
    # hash): match them by portable key and file them under this run's instance id
    this_id = dict(zip(results["instance_key"], results["instance_id"]))
    others = everything[everything["instance_key"].isin(this_id) & (everything["run_id"] != run["id"])]
    others = others.assign(instance_id=others["instance_key"].map(this_id))
    results = results.assign(_this=True)
    return pd.concat([results, others.assign(_this=False)], ignore_index=True) if not others.empty else results


def chain_labels(prune: pd.DataFrame) -> list[str]:
    """Each whole-model row's solver configuration as the runner and the CLI name it
    (:func:`solvers.registry.chain_name`: ``wanda+swap`` for swap warm-started from wanda; an empty or
    missing warm start is none)."""
    return [chain_name(s, w if isinstance(w, str) and w else None) for s, w in zip(prune["solver"], prune["warm_start"])]


def prune_rows(store: ResultStore, run: dict) -> pd.DataFrame:
    """The run's whole-model rows plus ``chain``, the solver configuration's label as the runner and the
    CLI name it (:func:`solvers.registry.chain_name`: ``wanda+swap`` for swap warm-started from wanda)."""
    prune = pd.DataFrame(store.prune_results(run["id"]))
    if prune.empty:
        return prune
    return prune.assign(chain=chain_labels(prune))


def load_report_inputs(store: ResultStore, run_id: int | None = None) -> ReportInputs:
    """Read run ``run_id`` (default: the latest) and prepare its rows once."""
    from reports.build import prepare

    run = check_run(store.run(run_id))
    return ReportInputs(prepare(report_rows(store, run)), prune_rows(store, run), report_header(store, run))


def write_report(store: ResultStore, run_id: int | None, out: str | Path | None = None,
                 formats: tuple[str, ...] = ("png", "pdf")) -> WrittenReport:
    """Write the report of run ``run_id`` (default: the latest) into ``out`` (default: ``report-SUITE``
    beside the store) with figures in ``formats``; return its files and gap table."""
    from reports.build import render_report
    from reports.tables import gap_table

    inputs = load_report_inputs(store, run_id)
    out = Path(out) if out is not None else store.path.parent / f"report-{inputs.header['suite']}"
    files = render_report(inputs.frame, inputs.prune, inputs.header, out, formats)
    gap = gap_table(inputs.frame) if not inputs.frame.empty else pd.DataFrame()
    return WrittenReport(files, gap)
