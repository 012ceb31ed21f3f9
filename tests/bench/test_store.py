"""The results store is never harmed: schema versions, legacy upgrade, foreign files refused
unmodified, read-only opening (also on a read-only mount), outputs that would destroy inputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import OutputPathError
from bench.export import export_csv
from bench.paths import file_mode
from bench.store import SCHEMA_VERSION, ResultStore, StoreError

# the schema of stores written before versions (no user_version, no portable key columns), as it was
LEGACY_DDL = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL,
    status TEXT NOT NULL, suite TEXT NOT NULL, suite_hash TEXT NOT NULL, git_commit TEXT NOT NULL,
    git_dirty INTEGER NOT NULL, machine_json TEXT NOT NULL);
CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL, task_key, instance_id,
    instance_json, solver, solver_name, settings_json, settings_hash, warm_start, status, objective,
    lower_bound, gap, build_seconds, solve_seconds, iterations, nodes, trace_json, verified, message,
    extra_json, finished_at, UNIQUE (run_id, task_key));
CREATE TABLE prune_results (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id, task_key, model, solver, warm_start,
    sparsity, pattern, dense_ppl, pruned_ppl, seconds, layers_json, protocol_json, finished_at,
    UNIQUE (run_id, task_key));
INSERT INTO runs VALUES (1, 1.0, 2.0, 'finished', 'quick', 'abc', 'deadbeef', 0, '{"cpu": "X", "cores": 2}');
INSERT INTO results (run_id, task_key, instance_id, solver, solver_name, settings_hash, status, objective, verified)
    VALUES (1, 'i1:c1', 'i1', 'wanda', 'wanda', 'c1', 'feasible', 2.5, 1);
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def journal_mode(path: Path) -> str:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as con:
        return con.execute("PRAGMA journal_mode").fetchone()[0]


def make_db(path: Path, ddl: str) -> Path:
    con = sqlite3.connect(path)
    con.executescript(ddl)
    con.close()
    return path


@pytest.fixture
def legacy(tmp_path) -> Path:
    return make_db(tmp_path / "legacy.sqlite", LEGACY_DDL)


def test_new_store_records_schema_version_and_portable_columns(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {r[1] for r in con.execute("PRAGMA table_info(results)")}
    assert {"instance_key", "fingerprint_json", "instance_id"} <= columns
    assert journal_mode(store.path) == "wal"


def test_legacy_store_is_read_unmodified_with_a_content_key(legacy):
    before = digest(legacy)
    store = ResultStore(legacy, create=False)
    (row,) = store.results()
    assert row["instance_key"] == "content:i1" and row["fingerprint_json"] is None
    assert store.prune_results() == [] and store.run()["suite"] == "quick"
    assert digest(legacy) == before and journal_mode(legacy) == "delete"


def test_writer_upgrades_a_legacy_store_in_place(legacy):
    store = ResultStore(legacy)
    with sqlite3.connect(legacy) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (row,) = store.results()
    assert row["objective"] == 2.5 and row["instance_key"] == "content:i1"
    store.add_result({"run_id": 1, "task_key": "i2:c1", "instance_id": "i2", "instance_key": "prov:0123",
                      "fingerprint_json": "[1.0]", "solver": "wanda", "status": "feasible", "objective": 1.0})
    assert [r["instance_key"] for r in ResultStore(legacy, create=False).results()] == ["content:i1", "prov:0123"]


# a version-2 store as the runner left it: portable keys, run_owners and prune_results.status created lazily
VERSION_2_DDL = LEGACY_DDL + """
ALTER TABLE results ADD COLUMN instance_key;
ALTER TABLE results ADD COLUMN fingerprint_json;
INSERT INTO prune_results (run_id, task_key, model, solver, sparsity, pattern, dense_ppl, pruned_ppl)
    VALUES (1, 'prune:a', 'tiny', 'wanda', 0.5, 'per-row', 30.0, 41.5);
INSERT INTO prune_results (run_id, task_key, model, solver, sparsity, pattern, dense_ppl, pruned_ppl)
    VALUES (1, 'prune:b', 'tiny', 'sparsegpt', 0.5, 'per-row', 30.0, NULL);
PRAGMA user_version = 2;
"""


@pytest.fixture
def version_2(tmp_path) -> Path:
    return make_db(tmp_path / "v2.sqlite", VERSION_2_DDL)


def test_new_store_has_every_table_of_the_current_schema(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    with sqlite3.connect(store.path) as con:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        prune = {r[1] for r in con.execute("PRAGMA table_info(prune_results)")}
    assert {"runs", "results", "prune_results", "run_owners"} <= tables
    assert {"status", "zero_shot_json"} <= prune
    store.add_prune_result({"run_id": 1, "task_key": "prune:x", "model": "m", "solver": "wanda", "pruned_ppl": None})
    (row,) = store.prune_results()
    assert row["status"] == "error" and row["zero_shot_json"] is None


def test_version_2_store_is_read_unmodified_with_derived_prune_status(version_2):
    before = digest(version_2)
    store = ResultStore(version_2, create=False)
    rows = store.prune_results()
    assert [(r["task_key"], r["status"], r["zero_shot_json"]) for r in rows] == [
        ("prune:a", "finished", None), ("prune:b", "error", None)]
    assert store.results()[0]["instance_key"] == "content:i1"
    assert digest(version_2) == before


def test_writer_upgrades_a_version_2_store_in_place(version_2):
    ResultStore(version_2)
    with sqlite3.connect(version_2) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert con.execute("SELECT task_key, status FROM prune_results ORDER BY id").fetchall() == [
            ("prune:a", "finished"), ("prune:b", "error")]
        assert con.execute("SELECT count(*) FROM run_owners").fetchone()[0] == 0
    store = ResultStore(version_2, create=False)
    assert store.prune_results()[0]["pruned_ppl"] == 41.5


def test_writer_upgrade_keeps_a_status_the_runner_already_added(version_2):
    with sqlite3.connect(version_2) as con:
        con.execute("ALTER TABLE prune_results ADD COLUMN status TEXT")
        con.execute("UPDATE prune_results SET status = 'error'")   # e.g. a retried task stored as an error
        con.execute("CREATE TABLE run_owners (run_id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, "
                    "token TEXT NOT NULL, heartbeat REAL NOT NULL)")
    ResultStore(version_2)
    assert [r["status"] for r in ResultStore(version_2, create=False).prune_results()] == ["error", "error"]

FOREIGN = {
    "runs of another schema": "CREATE TABLE runs (id INTEGER PRIMARY KEY, athlete TEXT, km REAL);"
                              "INSERT INTO runs VALUES (1, 'ann', 12.5);",
    "other tables": "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);",
    "a newer schema": LEGACY_DDL + f"PRAGMA user_version = {SCHEMA_VERSION + 1};",
    "another user_version": LEGACY_DDL + "PRAGMA user_version = 7;",
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_foreign_databases_are_refused_unmodified(kind, tmp_path, cli):
    db = make_db(tmp_path / "other.sqlite", FOREIGN[kind])
    before = digest(db)
    for create in (False, True):
        with pytest.raises(StoreError, match="not a maskbench results store|newer maskbench"):
            ResultStore(db, create=create)
    proc = cli("export", "--store", db, "--csv", tmp_path / "out.csv")
    assert proc.returncode == 2 and proc.stderr.startswith("maskbench: error:") and "Traceback" not in proc.stderr
    assert digest(db) == before and journal_mode(db) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_files_that_are_not_sqlite_are_refused_unmodified(tmp_path):
    text = tmp_path / "notes.csv"
    text.write_text("a,b\n1,2\n" * 100)
    before = digest(text)
    for create in (False, True):
        with pytest.raises(StoreError, match="not a maskbench results store"):
            ResultStore(text, create=create)
    assert digest(text) == before
    with pytest.raises(StoreError, match="no such results store"):
        ResultStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()  # a reader never creates the file


def test_reader_cannot_write(legacy):
    store = ResultStore(legacy, create=False)
    with pytest.raises(StoreError, match="read-only"):
        store.start_run("s", "h", "c", False, {})


def test_export_never_overwrites_its_store(tmp_path, cli):
    store = ResultStore(tmp_path / "s.sqlite")
    run = store.start_run("t", "h", "c", False, {"cpu": "X"})
    store.add_result({"run_id": run, "task_key": "k", "instance_id": "i", "solver": "wanda", "status": "feasible",
                      "objective": 1.0, "settings_hash": "c1", "verified": 1})
    before = digest(store.path)
    for target in (store.path, tmp_path / "s.sqlite-wal", tmp_path / "." / "s.sqlite"):
        with pytest.raises(OutputPathError, match="refusing to overwrite"):
            export_csv(ResultStore(store.path, create=False), target)
        proc = cli("export", "--store", store.path, "--csv", target)
        assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert digest(store.path) == before and len(ResultStore(store.path, create=False).results()) == 1
    csv = tmp_path / "out" / "b.csv"
    assert export_csv(ResultStore(store.path, create=False), csv) == 1
    assert csv.stat().st_mode & 0o777 == file_mode()  # 0644 under the usual umask, not mkstemp's 0600
    assert [p.name for p in csv.parent.iterdir()] == ["b.csv"]  # no temporary file left behind


def test_export_of_an_empty_run_is_refused(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    store.start_run("t", "h", "c", False, {"cpu": "X"})
    with pytest.raises(StoreError, match="no results to export"):
        export_csv(ResultStore(store.path, create=False), tmp_path / "b.csv")
    assert not (tmp_path / "b.csv").exists()


def _read_only_mount_command(folder: Path, command: list[str]) -> list[str] | None:
    """``command`` run with ``folder`` read-only: a private read-only bind mount (root with mount
    namespaces), else the folder's write permission removed (anyone else); None if neither works."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return command
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"mount --bind '{folder}' '{folder}' && "
                            f"mount -o remount,bind,ro '{folder}' && ! touch '{folder}/probe'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    quoted = " ".join(f"'{part}'" for part in command)
    return [unshare, "-m", "sh", "-c", f"mount --bind '{folder}' '{folder}' && "
            f"mount -o remount,bind,ro '{folder}' && exec {quoted}"]


def test_valid_store_on_a_read_only_mount_can_be_exported(tmp_path, repo_root):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = ResultStore(folder / "s.sqlite")  # WAL mode: readers need a -shm file they cannot create there
    run = store.start_run("t", "h", "c", False, {"cpu": "X"})
    store.add_result({"run_id": run, "task_key": "k", "instance_id": "i", "solver": "wanda", "status": "feasible",
                      "objective": 1.0, "settings_hash": "c1", "verified": 1})
    before = digest(store.path)
    csv = tmp_path / "b.csv"
    command = _read_only_mount_command(folder, [sys.executable, "-m", "bench.cli", "export", "--store",
                                                str(store.path), "--csv", str(csv)])
    if command is None:
        pytest.skip("cannot make a folder read-only here (root without mount namespaces)")
    try:
        proc = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 1 results" in proc.stdout and csv.read_text().count("\n") == 2
    assert digest(store.path) == before
