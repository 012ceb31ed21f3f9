"""``bench.history``: every run's results relative to the store-wide references, in run order,
machine marked; the ``history`` command writes the table, the rows and the figure."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from bench.history import history_frame, machine_label
from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import load_suite


@pytest.fixture(scope="module")
def store_with_history(tmp_path_factory):
    """Two runs of a suite with bruteforce (proven references) plus a third on 'another machine'
    whose wanda objectives are 1 % worse (a simulated regression)."""
    tmp = tmp_path_factory.mktemp("history")
    path = tmp / "suite.toml"
    path.write_text('name = "h"\n[[instances]]\nkind = "generated"\nfamily = "tiny"\nd_in = 12\nd_out = 3\n'
                    'seeds = [0, 1]\n[[solvers]]\nname = "wanda"\n[[solvers]]\nname = "bruteforce"\n')
    suite = load_suite(str(path))
    store = ResultStore(tmp / "s.sqlite")
    ids = [run_suite(suite, store, workers=1, force=True, progress=False, log=lambda m: None).run_id
           for _ in range(3)]
    with sqlite3.connect(store.path) as con:
        machine = json.loads(con.execute("SELECT machine_json FROM runs WHERE id = ?", (ids[2],)).fetchone()[0])
        machine.update(cpu="Other CPU", cores=64)
        con.execute("UPDATE runs SET machine_json = ? WHERE id = ?", (json.dumps(machine), ids[2]))
        con.execute("UPDATE results SET objective = objective * 1.01 WHERE run_id = ? AND solver = 'wanda'", (ids[2],))
    return store, ids


def test_history_relates_every_result_to_the_store_reference(store_with_history):
    store, ids = store_with_history
    frame = history_frame(store)
    assert list(frame["run_id"].drop_duplicates()) == ids  # time order
    brute = frame[frame["solver"] == "bruteforce"]
    assert brute["proven"].all() and (brute["ratio"] == 1.0).all()
    wanda = frame[frame["solver"] == "wanda"].set_index(["run_id", "instance"])["ratio"]
    assert (wanda.loc[ids[0]] >= 1.0).all()
    shifted = wanda.loc[ids[2]] / wanda.loc[ids[0]]
    assert shifted.to_numpy() == pytest.approx(1.01, rel=1e-12)  # the simulated regression shows, per instance
    machines = frame.drop_duplicates("run_id").set_index("run_id")["machine"]
    assert machines[ids[2]].startswith("Other CPU · 64 cores") and machines[ids[0]] != machines[ids[2]]


def test_history_filters_by_suite_and_solver(store_with_history):
    store, _ = store_with_history
    assert set(history_frame(store, solvers=["wanda"])["solver"]) == {"wanda"}
    assert history_frame(store, suite="no-such-suite").empty


def test_machine_label_names_cpu_cores_and_gpu():
    assert machine_label({"cpu": "X", "cores": 2, "gpu": None}) == "X · 2 cores"
    assert machine_label({"cpu": "X", "cores": 8, "gpu": "H200"}) == "X · 8 cores · H200"


def test_history_command_writes_table_rows_and_figure(store_with_history, cli, tmp_path):
    store, ids = store_with_history
    out = tmp_path / "hist"
    proc = cli("history", "--store", store.path, "--out", out, check=True)
    assert "median gap" in proc.stdout and "Other CPU" in proc.stdout
    rows = pd.read_csv(out / "history.csv")
    assert len(rows) == 3 * 2 * 2 and set(rows["run_id"]) == set(ids)
    for name in ("history.md", "history.png", "history.pdf"):
        assert (out / name).stat().st_size > 0
    empty = cli("history", "--store", store.path, "--suite", "nope")
    assert empty.returncode == 2 and empty.stderr.startswith("maskbench: error:") and "nope" in empty.stderr
