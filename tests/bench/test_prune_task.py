"""Whole-model prune tasks have a status: a failed prune is an error, counted, and retried on resume."""

import json

import bench.prune_task
from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import load_suite
from tests.bench.test_store import VERSION_2_DDL, make_db


def test_failed_prune_is_an_error_counted_and_retried(tiny_llama_dir, tmp_path, monkeypatch):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\n[[prune]]\nmodel = "{tiny_llama_dir}"\nsolver = "magnitude"\n'
                    f'nsamples = 4\nseqlen = 32\neval_windows = 4\n')
    suite, store = load_suite(str(path)), ResultStore(tmp_path / "s.sqlite")

    def no_session(job):
        raise RuntimeError("injected: calibration failed")

    monkeypatch.setattr(bench.prune_task, "_session", no_session)
    failed = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert (failed.done, failed.errors) == (1, 1)
    [row] = store.prune_results(failed.run_id)
    assert row["status"] == "error" and row["pruned_ppl"] is None
    assert "injected: calibration failed" in json.loads(row["protocol_json"])["error"]

    monkeypatch.undo()
    messages = []
    retried = run_suite(suite, store, workers=1, progress=False, log=messages.append)
    assert (retried.run_id, retried.retried, retried.done, retried.errors) == (failed.run_id, 1, 1, 0)
    assert "1 stored as error will be retried" in messages[-1]
    [row] = store.prune_results(failed.run_id)
    assert row["status"] == "finished" and row["pruned_ppl"] > 1 and row["dense_ppl"] > 1

    again = run_suite(suite, store, workers=1, progress=False, log=lambda m: None)
    assert (again.skipped, again.done, again.errors) == (1, 0, 0)


def test_prune_rows_of_older_stores_get_a_status_from_their_perplexity(tmp_path):
    # a version-2 store, written before prune rows had a status: a stored perplexity means finished, none
    # means error; the runner (a writer) upgrades the store and reads the derived status
    path = make_db(tmp_path / "v2.sqlite", VERSION_2_DDL)
    store = ResultStore(path)
    assert store.task_keys_by_status(1) == ({"i1:c1", "prune:a"}, {"prune:b"})
    assert {r["task_key"]: r["status"] for r in store.prune_results(1)} == {"prune:a": "finished", "prune:b": "error"}
