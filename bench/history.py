"""Quality history: how each solver configuration's objectives move across the runs of a store.

For every result of every run (optionally one suite, some solvers), the objective relative to its
instance's *reference* — the best proven optimum anywhere in the store, else the best objective
known — so ``ratio = objective / reference ≥ 1`` and ``ratio − 1`` is the gap. Runs are ordered by
start time and labelled by commit; each carries its machine (CPU, cores, GPU), because a
heuristic's path can differ slightly from one CPU to another: runs on different machines are
shown, marked, never hidden. Instances are matched across runs by their portable key where the
store has one (``instance_key``), else by content hash.

This module reads the store and hands :mod:`reports.history` one plain frame.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from bench.machine import machine_fingerprint, stored_machine
from bench.store import ResultStore
from bench.store_checks import check_run

HISTORY_COLUMNS = ("run_id", "started", "git_commit", "git_dirty", "machine", "suite", "solver", "settings_hash",
                   "instance", "status", "objective", "reference", "proven", "ratio")


def machine_label(machine: dict) -> str:
    """``CPU model · N cores [· GPU]``: what distinguishes machines in the history."""
    cpu, cores, gpu = machine_fingerprint(machine)
    return " · ".join(str(x) for x in (cpu or "unknown CPU", f"{cores} cores" if cores else None, gpu) if x)


def _instance_column(frame: pd.DataFrame) -> pd.Series:
    if "instance_key" in frame and frame["instance_key"].notna().all():
        return frame["instance_key"]
    return "content:" + frame["instance_id"].astype(str)


def history_frame(store: ResultStore, suite: str | None = None, solvers: list[str] | None = None) -> pd.DataFrame:
    """One row per stored result (see the module docstring); empty frame when nothing matches."""
    runs = pd.DataFrame([check_run(r) for r in store.runs()])
    results = pd.DataFrame(store.results())
    if runs.empty or results.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    results = results.assign(instance=_instance_column(results))
    ok = results[results["status"] != "error"]
    proven = ok[ok["status"] == "optimal"].groupby("instance")["objective"].min()
    known = ok.groupby("instance")["objective"].min()
    reference = proven.reindex(known.index).fillna(known)
    runs = runs.rename(columns={"id": "run_id"})
    runs["started"] = [dt.datetime.fromtimestamp(t).isoformat(timespec="seconds") for t in runs["started_at"]]
    runs["machine"] = [machine_label(stored_machine(m)) for m in runs["machine_json"]]
    frame = results.merge(runs[["run_id", "started", "started_at", "git_commit", "git_dirty", "machine", "suite"]],
                          on="run_id", how="left")
    if suite is not None:
        frame = frame[frame["suite"] == suite]
    if solvers:
        frame = frame[frame["solver"].isin(solvers)]
    frame = frame.assign(reference=frame["instance"].map(reference),
                         proven=frame["instance"].isin(proven.index))
    ref, obj = frame["reference"].astype(float), frame["objective"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref > 0, obj / ref, np.where(obj <= 0, 1.0, np.inf))
    frame = frame.assign(ratio=np.where(obj.isna(), np.nan, ratio))
    frame = frame.sort_values(["started_at", "run_id", "solver", "instance"], kind="stable")
    return frame[list(HISTORY_COLUMNS)].reset_index(drop=True)


PRUNE_HISTORY_COLUMNS = ("run_id", "started", "git_commit", "machine", "suite", "method", "pattern", "sparsity",
                         "status", "dense_ppl", "pruned_ppl", "zero_shot_json")


def prune_history_frame(store: ResultStore, suite: str | None = None) -> pd.DataFrame:
    """One row per stored whole-model run (perplexities and the zero-shot JSON), in run order."""
    from bench.reporting import chain_labels

    runs = pd.DataFrame(store.runs())
    prune = pd.DataFrame(store.prune_results())
    if runs.empty or prune.empty:
        return pd.DataFrame(columns=PRUNE_HISTORY_COLUMNS)
    runs = runs.rename(columns={"id": "run_id"})
    runs["started"] = [dt.datetime.fromtimestamp(t).isoformat(timespec="seconds") for t in runs["started_at"]]
    runs["machine"] = [machine_label(stored_machine(m)) for m in runs["machine_json"]]
    frame = prune.merge(runs[["run_id", "started", "started_at", "git_commit", "machine", "suite"]], on="run_id",
                        how="left")
    if suite is not None:
        frame = frame[frame["suite"] == suite]
    frame = frame.assign(method=chain_labels(frame))
    if "zero_shot_json" not in frame:
        frame["zero_shot_json"] = None
    frame = frame.sort_values(["started_at", "run_id", "id"], kind="stable")
    return frame[list(PRUNE_HISTORY_COLUMNS)].reset_index(drop=True)
