"""The results store's schema: its tables, its versions, how a file's state is recognised, and the
one upgrade path that writers take.

Tables (schema version 3)
-------------------------
``runs``: ``id, started_at, finished_at, status (running|finished|interrupted|…), suite, suite_hash,
git_commit, git_dirty, machine_json`` (CPU model, cores, RAM, GPU, versions).

``results``: ``run_id, task_key, instance_id`` (exact content hash of W and G: differs between
CPUs for recomputed instances), ``instance_json`` (d_out, d_in, pattern, family, model, layer … as
JSON), ``solver`` (configuration label), ``solver_name``, ``settings_json``, ``settings_hash``,
``warm_start, status, objective, lower_bound, gap, build_seconds, solve_seconds, iterations,
nodes, trace_json, verified, message, extra_json, finished_at``, then ``instance_key`` (the
portable key of :func:`solvers.identity.portable_key`, what results are matched on across
machines) and ``fingerprint_json`` (:func:`solvers.identity.fingerprint` as a JSON list).
``(run_id, task_key)`` is unique: a task is stored once per run.

``prune_results``: whole-model pruning runs (``run_id, task_key, model, solver, warm_start,
sparsity, pattern, dense_ppl, pruned_ppl, seconds, layers_json, protocol_json, finished_at``), then
``status`` (``finished`` | ``error``) and ``zero_shot_json`` (zero-shot accuracies as JSON, NULL when
none were measured).

``run_owners``: ``run_id`` (primary key), ``host, pid, token, heartbeat`` — which runner executes a
run (:mod:`bench.run_owner`).

Versions
--------
``PRAGMA user_version`` is :data:`SCHEMA_VERSION`.

* 0 with our tables, no ``instance_key``: *legacy* (before versions).
* 2: portable keys; ``run_owners`` and ``prune_results.status`` were created lazily by the runner, so a
  version-2 store may lack them; no ``zero_shot_json``.
* 3: every table and column above, created with the store.

Readers read any of these as they are (:func:`fill_prune_row` derives the columns an older
``prune_results`` lacks); only a writer upgrades, in place, in one transaction
(:func:`upgrade`). Anything else — a database whose tables are not ours, a newer schema, another
``user_version`` — is refused with :class:`bench.errors.StoreError` before anything is written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.errors import StoreError

SCHEMA_VERSION = 3
"""``PRAGMA user_version`` of a current store; 0 with our tables = legacy store."""
OLDER_VERSIONS = (0, 2)
"""Versions a reader reads and a writer upgrades (there was no released version 1)."""

RUN_COLUMNS = ("id", "started_at", "finished_at", "status", "suite", "suite_hash", "git_commit", "git_dirty",
               "machine_json")
LEGACY_RESULT_COLUMNS = (
    "run_id", "task_key", "instance_id", "instance_json", "solver", "solver_name", "settings_json",
    "settings_hash", "warm_start", "status", "objective", "lower_bound", "gap", "build_seconds",
    "solve_seconds", "iterations", "nodes", "trace_json", "verified", "message", "extra_json", "finished_at",
)
ADDED_RESULT_COLUMNS = ("instance_key", "fingerprint_json")
"""Columns of schema version 2, appended (so new and upgraded stores have the same column order)."""
RESULT_COLUMNS = LEGACY_RESULT_COLUMNS + ADDED_RESULT_COLUMNS
LEGACY_PRUNE_COLUMNS = (
    "run_id", "task_key", "model", "solver", "warm_start", "sparsity", "pattern", "dense_ppl", "pruned_ppl",
    "seconds", "layers_json", "protocol_json", "finished_at",
)
ADDED_PRUNE_COLUMNS = ("status", "zero_shot_json")
"""Columns of schema version 3 in ``prune_results``, appended."""
PRUNE_COLUMNS = LEGACY_PRUNE_COLUMNS + ADDED_PRUNE_COLUMNS
OWNER_COLUMNS = ("run_id", "host", "pid", "token", "heartbeat")

PRUNE_TABLE = f"""
CREATE TABLE IF NOT EXISTS prune_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(PRUNE_COLUMNS)},
    UNIQUE (run_id, task_key));
"""
OWNER_TABLE = """
CREATE TABLE IF NOT EXISTS run_owners (run_id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
    token TEXT NOT NULL, heartbeat REAL NOT NULL);
"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL,
    suite TEXT NOT NULL, suite_hash TEXT NOT NULL,
    git_commit TEXT NOT NULL, git_dirty INTEGER NOT NULL, machine_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(c + (" INTEGER NOT NULL" if c == "run_id" else "") for c in RESULT_COLUMNS)},
    UNIQUE (run_id, task_key));
CREATE INDEX IF NOT EXISTS results_instance ON results (instance_id);
{PRUNE_TABLE}
{OWNER_TABLE}
"""

EMPTY, OLDER, CURRENT = "empty", "older", "current"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(con: sqlite3.Connection) -> dict[str, set[str]]:
    """Every table of the database (SQLite's own left out) with its column names."""
    return {name: {row[1] for row in con.execute(f"PRAGMA table_info({quote(name)})")}
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'")}


def schema_state(con: sqlite3.Connection, path: Path) -> str:
    """``EMPTY`` (no tables yet), ``OLDER`` (ours, version 0 or 2) or ``CURRENT``; :class:`StoreError`
    for anything else. Only reads."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = table_columns(con)
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: written by a newer maskbench (store schema version {version}; "
                         f"this version reads up to {SCHEMA_VERSION})")
    if version not in (*OLDER_VERSIONS, SCHEMA_VERSION):
        raise StoreError(f"{path}: not a maskbench results store (SQLite user_version {version})")
    if not tables:
        return EMPTY
    required = {"runs": set(RUN_COLUMNS), "results": {"id", *LEGACY_RESULT_COLUMNS}}
    if "prune_results" in tables:
        required["prune_results"] = {"id", *LEGACY_PRUNE_COLUMNS}
    if "run_owners" in tables:
        required["run_owners"] = set(OWNER_COLUMNS)
    if version >= 2:
        required["results"] |= set(ADDED_RESULT_COLUMNS)
    if version == SCHEMA_VERSION:
        required["prune_results"] = {"id", *PRUNE_COLUMNS}
        required["run_owners"] = set(OWNER_COLUMNS)
    for table, columns in required.items():
        if table not in tables:
            raise StoreError(f"{path}: not a maskbench results store (tables {sorted(tables)}; no {table!r} table)")
        lacking = sorted(columns - tables[table])
        if lacking:
            raise StoreError(f"{path}: not a maskbench results store (table {table!r} of another schema: "
                             f"no column {', '.join(lacking)})")
    return CURRENT if version == SCHEMA_VERSION else OLDER


def create(con: sqlite3.Connection) -> None:
    """Create every table of an empty database (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def upgrade(con: sqlite3.Connection) -> None:
    """Bring an ``OLDER`` store to :data:`SCHEMA_VERSION` in place (inside the caller's transaction).

    Adds what each older version lacks: the portable-key columns of ``results`` (legacy), the
    ``prune_results`` table (the oldest stores), its ``status`` column with the value derived from
    ``pruned_ppl`` (a failed prune stored no perplexity) and its ``zero_shot_json`` column, and the
    ``run_owners`` table. Rows are kept as they are.
    """
    tables = table_columns(con)
    for column in ADDED_RESULT_COLUMNS:
        if column not in tables["results"]:
            con.execute(f"ALTER TABLE results ADD COLUMN {column}")
    if "prune_results" not in tables:
        con.execute(PRUNE_TABLE)
    else:
        if "status" not in tables["prune_results"]:
            con.execute("ALTER TABLE prune_results ADD COLUMN status TEXT")
            con.execute(f"UPDATE prune_results SET status = {DERIVED_PRUNE_STATUS}")
        if "zero_shot_json" not in tables["prune_results"]:
            con.execute("ALTER TABLE prune_results ADD COLUMN zero_shot_json TEXT")
    con.execute(OWNER_TABLE)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


DERIVED_PRUNE_STATUS = "CASE WHEN pruned_ppl IS NULL THEN 'error' ELSE 'finished' END"
"""``prune_results.status`` of a row written before the column existed."""


def fill_prune_row(row: dict) -> dict:
    """A ``prune_results`` row read from an older store, with the version-3 columns it lacks derived
    (``status`` as :data:`DERIVED_PRUNE_STATUS`, no zero-shot results)."""
    if row.get("status") is None:
        row["status"] = "error" if row.get("pruned_ppl") is None else "finished"
    row.setdefault("zero_shot_json", None)
    return row
