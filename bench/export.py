"""Results as flat tables: export to CSV and load any compare/report source.

A *source* is a store file (its latest run), ``FILE:RUN`` (a given run of a store), or a
CSV written by ``maskbench export`` (a committed baseline, for instance). Stores are opened
read-only (see :mod:`bench.store`).

An exported CSV holds one run: the result columns of :data:`bench.store.RESULT_COLUMNS`
(with ``instance_key`` and ``fingerprint_json``, the portable identity the regression gate
matches on) followed by :data:`RUN_COLUMNS` (the run's suite, suite hash, commit and machine).
Identifiers are read back as text, never as numbers (a hex hash of digits only would
otherwise become an integer).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from bench.machine import machine_fingerprint, normalise_fingerprint, stored_machine
from bench.paths import STDOUT, atomic_write_text, output_file, store_files
from bench.store import RESULT_COLUMNS, ResultStore, StoreError
from bench.store_checks import check_run

RUN_COLUMNS = ("suite", "suite_hash", "git_commit", "git_dirty", "machine_cpu", "machine_cores", "machine_gpu")
REQUIRED_CSV_COLUMNS = ("instance_id", "solver", "solver_name", "settings_hash", "status", "objective",
                        "verified", "suite")
"""Columns the regression gate needs from a CSV source; a CSV lacking one is refused, naming it."""
TEXT_COLUMNS = ("task_key", "instance_id", "instance_key", "fingerprint_json", "solver", "solver_name",
                "settings_hash", "status", "suite", "suite_hash", "git_commit", "machine_cpu", "machine_gpu")


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def run_frame(store: ResultStore, run_id: int | None = None) -> tuple[pd.DataFrame, dict]:
    """``(results of one run as a DataFrame, run record)``; default: the latest run."""
    run = check_run(store.run(run_id))
    rows = store.results(run["id"])
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["id", *RESULT_COLUMNS])
    machine = stored_machine(run["machine_json"])
    for col, value in zip(RUN_COLUMNS, (run["suite"], run["suite_hash"], run["git_commit"], run["git_dirty"],
                                        *machine_fingerprint(machine))):
        frame[col] = value
    return frame, run


def load_source(spec: str) -> tuple[pd.DataFrame, dict]:
    """Load a compare/report source (see module docstring) as ``(frame, run description)``."""
    path, _, run = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store or baseline file")
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store or baseline file")
    if _is_sqlite(path):
        try:
            run_id = int(run) if run else None
        except ValueError:
            raise StoreError(f"{spec}: run must be an integer id") from None
        frame, record = run_frame(ResultStore(path, create=False), run_id)
        machine = stored_machine(record["machine_json"])
        return frame, {"source": str(path), "run": record["id"], "suite": record["suite"],
                       "suite_hash": record["suite_hash"], "git_commit": record["git_commit"],
                       "git_dirty": bool(record["git_dirty"]), "fingerprint": machine_fingerprint(machine),
                       "machine": machine}
    if path.suffix.lower() != ".csv":
        raise StoreError(f"{path}: neither a SQLite results store nor an exported .csv baseline")
    return load_csv(path)


def load_csv(path: Path) -> tuple[pd.DataFrame, dict]:
    """An exported CSV as ``(frame, run description)``; refused, naming the reason, unless it holds
    result rows of one run with every column of :data:`REQUIRED_CSV_COLUMNS`."""
    try:
        frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: not a maskbench export ({str(exc).strip() or type(exc).__name__})") from None
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise StoreError(f"{path}: not a maskbench export: missing column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(c) for c in missing)}")
    if frame.empty:
        raise StoreError(f"{path}: a maskbench export with no result rows")
    for c in ("objective", "verified"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    for c in ("instance_key", "fingerprint_json"):  # absent in exports written before portable keys
        if c not in frame.columns:
            frame[c] = None
    frame["instance_key"] = frame["instance_key"].where(frame["instance_key"].notna(), "content:" + frame["instance_id"])
    for col in ("suite", "suite_hash", "git_commit"):
        values = sorted({str(v) for v in frame[col]}) if col in frame.columns else []
        if len(values) > 1:
            raise StoreError(f"{path}: rows of several runs ({col} {', '.join(values[:4])}); export one run per file")
    first = frame.iloc[0]
    fingerprint = normalise_fingerprint(*(first.get(c) for c in ("machine_cpu", "machine_cores", "machine_gpu")))
    return frame, {"source": str(path), "run": first.get("run_id"), "suite": first.get("suite"),
                   "suite_hash": first.get("suite_hash"), "git_commit": first.get("git_commit"),
                   "fingerprint": fingerprint}


def export_csv(store: ResultStore, path: str | Path, run_id: int | None = None) -> int:
    """Write one run's results to CSV, atomically; returns the number of rows.

    ``path`` ``-`` writes to standard output. Refuses (:class:`bench.errors.OutputPathError`, see
    :func:`bench.paths.output_file`) a ``path`` that is the store or one of its SQLite side files, a
    directory or a special file (``/dev/stdout`` is a link to one), and (:class:`StoreError`)
    a run without results: an empty baseline would gate nothing. Values keep full float precision (the CSV
    is a regression baseline); ``finished_at`` is written as an ISO 8601 UTC timestamp, as in every report table."""
    from reports.formatting import format_timestamp

    target = None if str(path) == STDOUT else output_file(path, *store_files(store.path))
    frame, run = run_frame(store, run_id)
    if frame.empty:
        raise StoreError(f"{store.path}: run {run['id']} has no results to export")
    if "finished_at" in frame:
        frame["finished_at"] = frame["finished_at"].map(format_timestamp)
    text = frame.to_csv(index=False)
    if target is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write_text(target, text)
    return len(frame)
