"""Results as flat tables: export to CSV and load any compare/report source.

A *source* is a store file (its latest run), ``FILE:RUN`` (a given run of a store), or a
CSV written by ``maskbench export`` (a committed baseline, for instance).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.machine import machine_fingerprint, normalise_fingerprint
from bench.store import ResultStore, StoreError

RUN_COLUMNS = ("suite", "git_commit", "git_dirty", "machine_cpu", "machine_cores", "machine_gpu")


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def run_frame(store: ResultStore, run_id: int | None = None) -> tuple[pd.DataFrame, dict]:
    """``(results of one run as a DataFrame, run record)``; default: the latest run."""
    run = store.run(run_id)
    rows = store.results(run["id"])
    frame = pd.DataFrame(rows)
    machine = json.loads(run["machine_json"])
    for col, value in zip(RUN_COLUMNS, (run["suite"], run["git_commit"], run["git_dirty"],
                                        *machine_fingerprint(machine))):
        frame[col] = value
    return frame, run


def load_source(spec: str) -> tuple[pd.DataFrame, dict]:
    """Load a compare/report source (see module docstring) as ``(frame, run description)``."""
    path, _, run = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store or baseline file")
    if _is_sqlite(path):
        try:
            run_id = int(run) if run else None
        except ValueError:
            raise StoreError(f"{spec}: run must be an integer id") from None
        frame, record = run_frame(ResultStore(path, create=False), run_id)
        machine = json.loads(record["machine_json"])
        return frame, {"source": str(path), "run": record["id"], "suite": record["suite"],
                       "git_commit": record["git_commit"], "git_dirty": bool(record["git_dirty"]),
                       "fingerprint": machine_fingerprint(machine), "machine": machine}
    if path.suffix.lower() != ".csv":
        raise StoreError(f"{path}: neither a SQLite results store nor an exported .csv baseline")
    frame = pd.read_csv(path)
    missing = {"instance_id", "settings_hash", "objective", "status"} - set(frame.columns)
    if missing:
        raise StoreError(f"{path}: not a maskbench export (missing columns {sorted(missing)})")
    first = frame.iloc[0] if len(frame) else {}
    fingerprint = (normalise_fingerprint(*(first.get(c) for c in ("machine_cpu", "machine_cores", "machine_gpu")))
                   if len(frame) else ())
    return frame, {"source": str(path), "run": first.get("run_id"), "suite": first.get("suite"),
                   "git_commit": first.get("git_commit"), "fingerprint": fingerprint}


def export_csv(store: ResultStore, path: str | Path, run_id: int | None = None) -> int:
    """Write one run's results to CSV; returns the number of rows.

    Values keep full float precision (the CSV is a regression baseline); ``finished_at`` is
    written as an ISO 8601 UTC timestamp, as in every report table.
    """
    from reports.formatting import format_timestamp

    frame, _ = run_frame(store, run_id)
    if "finished_at" in frame:
        frame["finished_at"] = frame["finished_at"].map(format_timestamp)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)
