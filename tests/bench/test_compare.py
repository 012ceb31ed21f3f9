"""The regression gate ``maskbench compare``: matching, tolerances, downgrades, missing tasks, bad sources."""

import sqlite3

import pytest


def test_identical_rerun_passes(two_runs, cli):
    tmp, store, r1, r2 = two_runs
    proc = cli("compare", f"{store.path}:{r1}", f"{store.path}:{r2}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "**OK**" in proc.stdout and "matched tasks: 8" in proc.stdout
    assert "median time ratio" in proc.stdout  # same machine: timings reported


@pytest.mark.slow
def test_injected_regressions_are_detected(two_runs, cli, tmp_path):
    tmp, store, r1, r2 = two_runs
    db = tmp_path / "hacked.sqlite"
    db.write_bytes(store.path.read_bytes())
    with sqlite3.connect(db) as con:
        ids = [r[0] for r in con.execute("SELECT id FROM results WHERE run_id = ? ORDER BY id", (r2,))]
        con.execute("UPDATE results SET objective = objective * 1.01 WHERE id = ?", (ids[0],))
        con.execute("UPDATE results SET status = 'error' WHERE id = ?", (ids[1],))
        con.execute("UPDATE results SET verified = 0 WHERE id = ?", (ids[2],))
        con.execute("UPDATE results SET objective = objective * 1.0001 WHERE id = ?", (ids[3],))  # within 0.1%
        con.execute("DELETE FROM results WHERE id = ?", (ids[4],))
    proc = cli("compare", f"{store.path}:{r1}", f"{db}:{r2}")
    assert proc.returncode == 1
    out = proc.stdout
    assert "**REGRESSION**: 4 regressions" in out
    for what in ("objective +0.01", "status feasible -> error", "verification failed", "missing in new"):
        assert what in out
    assert cli("compare", f"{store.path}:{r1}", f"{db}:{r2}", "--tolerance", "1e-6").stdout.count("objective +") == 2
    assert cli("compare", f"{store.path}:{r1}", f"{db}:{r2}", "--allow-missing").stdout.count("missing in new") == 1


def test_compare_bad_sources(cli, tmp_path):
    proc = cli("compare", tmp_path / "none.sqlite", tmp_path / "none2.sqlite")
    assert proc.returncode == 2 and "no such store" in proc.stderr
    junk = tmp_path / "x.csv"
    junk.write_text("a,b\n1,2\n")
    proc = cli("compare", junk, junk)
    assert proc.returncode == 2 and "not a maskbench export" in proc.stderr
