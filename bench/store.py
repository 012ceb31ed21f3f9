"""The results store: SQLite (WAL mode), one row per finished task, committed at once.

The tables, their columns and the schema versions are in :mod:`bench.store_schema`.

Safety
------
Readers (``ResultStore(path, create=False)``: report, export, compare, history) open the file
read-only (URI ``mode=ro``): they never create tables, never upgrade, never switch the journal mode
and never create the file; they read an older store as it is. A store on a read-only mount (where
SQLite cannot create the ``-shm`` file a WAL database needs) is opened ``immutable`` when no
``-wal`` file is present, i.e. when every committed transaction is in the main file.

Writers (``create=True``: run) check the file first (:func:`bench.store_schema.schema_state`
refuses what is not ours before anything is written), then create or upgrade the schema in one
``BEGIN IMMEDIATE`` transaction, then switch to WAL. Two runners may write to one store at once:
WAL mode plus a 60 s busy timeout, and every write is its own short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from bench.errors import StoreError
from bench.store_schema import (
    CURRENT,
    EMPTY,
    PRUNE_COLUMNS,
    RESULT_COLUMNS,
    SCHEMA_VERSION,
    create,
    fill_prune_row,
    schema_state,
    upgrade,
)

__all__ = ["DEFAULT_STORE", "RESULT_COLUMNS", "PRUNE_COLUMNS", "SCHEMA_VERSION", "ResultStore", "StoreError"]

DEFAULT_STORE = Path("results") / "maskbench.sqlite"
BUSY_TIMEOUT_S = 60.0


class ResultStore:
    """The results store at ``path``: ``create=True`` for writers, ``create=False`` opens it read-only."""

    def __init__(self, path: str | Path = DEFAULT_STORE, create: bool = True):
        self.path = Path(path)
        self.read_only = not create
        self._immutable = False
        if self.read_only:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no such results store")
            self.state = self._checked(self._open_reader)
            if self.state == EMPTY:
                raise StoreError(f"{self.path}: not a maskbench results store (an empty database)")
        else:
            if self.path.is_dir():
                raise StoreError(f"{self.path}: is a directory, not a results store")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.state = self._checked(self._prepare_writer)

    # ------------------------------------------------------------ opening
    def _checked(self, opener):
        try:
            return opener()
        except sqlite3.OperationalError as exc:  # locked, read-only, unreachable: a store maybe, but not usable
            raise StoreError(f"{self.path}: cannot {'read' if self.read_only else 'write'} the results store "
                             f"({exc})") from None
        except sqlite3.DatabaseError as exc:  # "file is not a database" and the like
            raise StoreError(f"{self.path}: not a maskbench results store ({exc})") from None

    def _open_reader(self) -> str:
        try:
            with closing(self._connect()) as con:
                return schema_state(con, self.path)
        except sqlite3.OperationalError as exc:
            wal = self.path.with_name(self.path.name + "-wal")
            if "unable to open" not in str(exc) or (wal.exists() and wal.stat().st_size > 0):
                raise
        self._immutable = True  # read-only folder, nothing pending in a WAL: the main file is the whole store
        with closing(self._connect()) as con:
            return schema_state(con, self.path)

    def _prepare_writer(self) -> str:
        with closing(self._connect()) as con:
            con.isolation_level = None
            con.execute("BEGIN IMMEDIATE")
            try:
                state = schema_state(con, self.path)  # raises before anything is written
                if state == EMPTY:
                    create(con)
                elif state != CURRENT:
                    upgrade(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("PRAGMA journal_mode=WAL")
        return CURRENT

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            flags = "mode=ro&immutable=1" if self._immutable else "mode=ro"
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?{flags}", uri=True, timeout=BUSY_TIMEOUT_S)
        else:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        con.row_factory = sqlite3.Row
        return con

    def _write(self, sql: str, params=()) -> int:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        with closing(self._connect()) as con, con:
            return con.execute(sql, params).lastrowid

    def _read(self, sql: str, params=()) -> list[sqlite3.Row]:
        with closing(self._connect()) as con:
            return con.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ runs
    def start_run(self, suite: str, suite_hash: str, git_commit: str, git_dirty: bool, machine: dict) -> int:
        return self._write(
            "INSERT INTO runs (started_at, status, suite, suite_hash, git_commit, git_dirty, machine_json) "
            "VALUES (?, 'running', ?, ?, ?, ?, ?)",
            (time.time(), suite, suite_hash, git_commit, int(git_dirty), json.dumps(machine)))

    def set_run_status(self, run_id: int, status: str) -> None:
        self._write("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, time.time(), run_id))

    def runs(self) -> list[dict]:
        return [dict(r) for r in self._read("SELECT * FROM runs ORDER BY id")]

    def run(self, run_id: int | None = None) -> dict:
        """One run (default: the latest); :class:`StoreError` if there is none."""
        rows = (self._read("SELECT * FROM runs WHERE id = ?", (run_id,)) if run_id is not None
                else self._read("SELECT * FROM runs ORDER BY id DESC LIMIT 1"))
        if not rows:
            raise StoreError(f"{self.path}: " + (f"no run {run_id}" if run_id is not None else "no runs yet"))
        return dict(rows[0])

    def resumable_run(self, suite: str, suite_hash: str, git_commit: str) -> dict | None:
        """The latest run of the same suite content at the same commit, if any."""
        rows = self._read("SELECT * FROM runs WHERE suite = ? AND suite_hash = ? AND git_commit = ? "
                          "ORDER BY id DESC LIMIT 1", (suite, suite_hash, git_commit))
        return dict(rows[0]) if rows else None

    # --------------------------------------------------------------- results
    def add_result(self, row: dict) -> None:
        self._insert("results", RESULT_COLUMNS, row)

    def add_prune_result(self, row: dict) -> None:
        """Store a whole-model result; ``status`` defaults to ``error`` when it has no pruned perplexity."""
        self._insert("prune_results", PRUNE_COLUMNS, fill_prune_row(dict(row)))

    def _insert(self, table: str, columns: tuple[str, ...], row: dict) -> None:
        values = {c: row.get(c) for c in columns}
        values["finished_at"] = values["finished_at"] or time.time()
        self._write(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES "
                    f"({', '.join('?' for _ in columns)})", tuple(values[c] for c in columns))

    def finished_task_keys(self, run_id: int) -> set[str]:
        sql = "SELECT task_key FROM results WHERE run_id = ?"
        params: tuple = (run_id,)
        if self._has_prune_table():
            sql, params = sql + " UNION SELECT task_key FROM prune_results WHERE run_id = ?", (run_id, run_id)
        return {r["task_key"] for r in self._read(sql, params)}

    def results(self, run_id: int | None = None) -> list[dict]:
        """Result rows of one run, or of every run when ``run_id`` is None.

        Rows written before portable keys (legacy stores, or rows of a store upgraded later) get
        ``instance_key = "content:<instance_id>"`` (exact content, as they were matched then) and
        ``fingerprint_json = None``."""
        rows = (self._read("SELECT * FROM results ORDER BY id") if run_id is None
                else self._read("SELECT * FROM results WHERE run_id = ? ORDER BY id", (run_id,)))
        return [with_portable_key(dict(r)) for r in rows]

    def prune_results(self, run_id: int | None = None) -> list[dict]:
        if not self._has_prune_table():
            return []
        rows = (self._read("SELECT * FROM prune_results ORDER BY id") if run_id is None
                else self._read("SELECT * FROM prune_results WHERE run_id = ? ORDER BY id", (run_id,)))
        return [fill_prune_row(dict(r)) for r in rows]

    def _has_prune_table(self) -> bool:
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'prune_results'"))

    # ==================================================================================
    # Runner block (issue 10 §4): run ownership, retries of stored errors, prune status.
    # Used by bench.runner only; kept apart from the rest of the store. The runner is a
    # writer, so its tables (run_owners, prune_results.status) exist: see bench.store_schema.
    # ==================================================================================
    def _runner_transaction(self) -> sqlite3.Connection:
        """A connection inside ``BEGIN IMMEDIATE`` (the write lock is taken at once)."""
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only")
        con = self._connect()
        con.isolation_level = None
        con.execute("BEGIN IMMEDIATE")
        return con

    def _in_runner_transaction(self, work):
        con = self._runner_transaction()
        try:
            out = work(con)
            con.execute("COMMIT")
            return out
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def claim_run(self, suite: str, suite_hash: str, git_commit: str, git_dirty: bool, machine: dict,
                  owner, force: bool = False) -> tuple[int, bool]:
        """Pick the run to execute and own it, atomically: ``(run_id, resumed)``.

        Without ``force`` the latest run of the same suite content at the same commit is resumed;
        if its owner is alive (:func:`bench.run_owner.owner_is_gone`) a :class:`StoreError` names
        it and nothing changes. Otherwise (or with ``force``) a new run is started.
        """
        from bench.run_owner import RunOwner, owner_is_gone

        def work(con):
            previous = None if force else con.execute(
                "SELECT id FROM runs WHERE suite = ? AND suite_hash = ? AND git_commit = ? ORDER BY id DESC LIMIT 1",
                (suite, suite_hash, git_commit)).fetchone()
            if previous is not None:
                run_id = previous["id"]
                held = con.execute("SELECT * FROM run_owners WHERE run_id = ?", (run_id,)).fetchone()
                if held is not None:
                    holder = RunOwner(held["host"], held["pid"], held["token"])
                    if not owner_is_gone(holder, held["heartbeat"]):
                        raise StoreError(
                            f"run {run_id} of suite {suite!r} is being executed by {holder.describe()} "
                            f"(heartbeat {time.time() - held['heartbeat']:.0f} s ago) in {self.path}; wait for it to "
                            f"finish, or use --force to start a separate run")
            else:
                run_id = con.execute(
                    "INSERT INTO runs (started_at, status, suite, suite_hash, git_commit, git_dirty, machine_json) "
                    "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                    (time.time(), suite, suite_hash, git_commit, int(git_dirty), json.dumps(machine))).lastrowid
            con.execute("INSERT OR REPLACE INTO run_owners (run_id, host, pid, token, heartbeat) VALUES (?, ?, ?, ?, ?)",
                        (run_id, owner.host, owner.pid, owner.token, time.time()))
            con.execute("UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?", (run_id,))
            return run_id, previous is not None

        return self._in_runner_transaction(work)

    def beat(self, run_id: int, owner) -> bool:
        """Refresh ``owner``'s heartbeat; False when the run is no longer owned by it."""
        return self._in_runner_transaction(lambda con: con.execute(
            "UPDATE run_owners SET heartbeat = ? WHERE run_id = ? AND token = ?",
            (time.time(), run_id, owner.token)).rowcount == 1)

    def release_run(self, run_id: int, owner, status: str) -> None:
        """Set the run's status and drop ``owner``'s claim (only if it still holds it)."""
        def work(con):
            if con.execute("DELETE FROM run_owners WHERE run_id = ? AND token = ?", (run_id, owner.token)).rowcount:
                con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, time.time(), run_id))

        self._in_runner_transaction(work)

    def store_task_row(self, row: dict, owner) -> None:
        """Store one finished task of ``row['run_id']`` as ``owner``; a stored ``error`` row of the
        same task is replaced (a retry), anything else stored is never overwritten.

        Raises :class:`StoreError` when ``owner`` no longer owns the run or the task is already stored.
        """
        prune = str(row["task_key"]).startswith("prune:")
        table, columns = ("prune_results", PRUNE_COLUMNS) if prune else ("results", RESULT_COLUMNS)
        values = {c: row.get(c) for c in columns}
        values["finished_at"] = values["finished_at"] or time.time()

        def work(con):
            held = con.execute("SELECT * FROM run_owners WHERE run_id = ?", (row["run_id"],)).fetchone()
            if held is None or held["token"] != owner.token:
                who = f"pid {held['pid']} on host {held['host']!r}" if held is not None else "nobody"
                raise StoreError(f"run {row['run_id']} is now owned by {who}, not by this runner; stopping "
                                 f"without storing task {row['task_key']}")
            con.execute(f"DELETE FROM {table} WHERE run_id = ? AND task_key = ? AND status = 'error'",
                        (row["run_id"], row["task_key"]))
            try:
                con.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                            tuple(values[c] for c in columns))
            except sqlite3.IntegrityError:
                raise StoreError(f"task {row['task_key']} of run {row['run_id']} is already stored; "
                                 f"not overwritten") from None
            con.execute("UPDATE run_owners SET heartbeat = ? WHERE run_id = ?", (time.time(), row["run_id"]))

        self._in_runner_transaction(work)

    def task_keys_by_status(self, run_id: int) -> tuple[set[str], set[str]]:
        """``(finished, errors)``: task keys of ``run_id`` stored without and with status ``error``."""
        def work(con):
            rows = con.execute("SELECT task_key, status FROM results WHERE run_id = ? UNION ALL "
                               "SELECT task_key, status FROM prune_results WHERE run_id = ?",
                               (run_id, run_id)).fetchall()
            return ({r["task_key"] for r in rows if r["status"] != "error"},
                    {r["task_key"] for r in rows if r["status"] == "error"})

        return self._in_runner_transaction(work)


def with_portable_key(row: dict) -> dict:
    """``row`` with ``instance_key`` and ``fingerprint_json`` present (derived for pre-key rows)."""
    if not row.get("instance_key"):
        row["instance_key"] = f"content:{row['instance_id']}"
    row.setdefault("fingerprint_json", None)
    return row
