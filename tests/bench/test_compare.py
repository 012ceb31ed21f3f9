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


# ------------------------------------------------------------------ the gate never passes vacuously
@pytest.fixture(scope="module")
def baseline_csv(two_runs, tmp_path_factory):
    """The first run of the small suite exported as CSV, read back as text (every value as written)."""
    import pandas as pd

    from bench.export import export_csv
    from bench.store import ResultStore

    tmp, store, r1, r2 = two_runs
    path = tmp_path_factory.mktemp("baseline") / "base.csv"
    export_csv(ResultStore(store.path, create=False), path, r1)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_variant(frame, folder, name, **changes):
    path = folder / name
    frame.assign(**changes).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case,expected", [
    ("header only", "no result rows"),
    ("every row twice", "holds 16 rows for 8 tasks"),
    ("other suite", "different suites: base is 'other', new is 't'"),
    ("other suite content", "differs between the two sets (content hash 0000000000000000 vs"),
    ("no column solver", "missing column 'solver'"),
    ("no columns status, objective", "missing columns 'status', 'objective'"),
    ("nothing matches", "no task matched"),
    ("exported before portable keys", "one side has content keys only"),
])
def test_vacuous_or_meaningless_comparisons_are_errors(case, expected, baseline_csv, two_runs, cli, tmp_path):
    import pandas as pd

    tmp, store, r1, r2 = two_runs
    frame = baseline_csv
    if case == "header only":
        frame = frame.iloc[:0]
    elif case == "every row twice":
        frame = pd.concat([frame, frame])
    elif case == "other suite":
        frame = frame.assign(suite="other")
    elif case == "other suite content":
        frame = frame.assign(suite_hash="0" * 16)
    elif case.startswith("no column"):
        frame = frame.drop(columns=case.removeprefix("no columns ").removeprefix("no column ").split(", "))
    elif case == "nothing matches":
        frame = frame.assign(instance_key="prov:" + frame["instance_key"].str[-16:].str[::-1])
    elif case == "exported before portable keys":  # read with keys derived from the content hash
        frame = frame.drop(columns=["instance_key", "fingerprint_json", "suite_hash"])
    path = write_variant(frame, tmp_path, "variant.csv")
    for extra in ((), ("--allow-missing",)):
        proc = cli("compare", path, f"{store.path}:{r2}", *extra)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("maskbench: error: ") and expected in proc.stderr, proc.stderr
        assert proc.stdout == "" and "OK" not in proc.stdout and "machines differ" not in proc.stdout


@pytest.mark.parametrize("tolerance", ["nan", "inf", "-1e-3", "-inf"])
def test_tolerance_must_be_finite_and_non_negative(tolerance, two_runs, cli):
    tmp, store, r1, r2 = two_runs
    proc = cli("compare", f"{store.path}:{r1}", f"{store.path}:{r2}", f"--tolerance={tolerance}")
    assert proc.returncode == 2 and "must be a finite number >= 0" in proc.stderr, proc.stderr


def test_nan_tolerance_cannot_hide_a_regression(two_runs):
    from bench.compare import compare
    from bench.errors import CompareError
    from bench.export import load_source

    tmp, store, r1, r2 = two_runs
    base, base_info = load_source(f"{store.path}:{r1}")
    new, new_info = load_source(f"{store.path}:{r2}")
    worse = new.copy()
    wanda = worse.index[worse["solver"] == "wanda"][0]
    worse.loc[wanda, "objective"] *= 1.01
    assert compare(base, worse, base_info, new_info).failed
    with pytest.raises(CompareError):
        compare(base, worse, base_info, new_info, heuristic_tol=float("nan"))


def test_changed_instance_content_under_the_same_key_is_a_regression(baseline_csv, two_runs, cli, tmp_path):
    import json

    tmp, store, r1, r2 = two_runs
    frame = baseline_csv.copy()
    first = frame.loc[0, "instance_key"]
    moved = [x * 1.001 for x in json.loads(frame.loc[0, "fingerprint_json"])]
    frame.loc[frame["instance_key"] == first, "fingerprint_json"] = json.dumps(moved)
    path = write_variant(frame, tmp_path, "changed.csv")
    changed = (frame["instance_key"] == first).sum()
    proc = cli("compare", path, f"{store.path}:{r2}")
    assert proc.returncode == 1 and f"instance content changed: {changed}" in proc.stdout
    assert proc.stdout.count("instance content changed (fingerprints differ") == changed
    proc = cli("compare", path, f"{store.path}:{r2}", "--allow-content-change")
    assert proc.returncode == 0 and "**OK**" in proc.stdout


def test_zero_matches_never_mentions_machines(two_runs):
    from bench.compare import compare
    from bench.errors import CompareError
    from bench.export import load_source

    tmp, store, r1, r2 = two_runs
    base, info = load_source(f"{store.path}:{r1}")
    other = base.assign(settings_hash="x" + base["settings_hash"])
    with pytest.raises(CompareError, match="no task matched") as err:
        compare(base, other, info, info, allow_missing=True)
    assert "machines" not in str(err.value)
