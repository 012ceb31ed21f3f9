"""The runner's model-backed sources on a tiny offline Llama: extracted instances and [[prune]] tasks."""

import json

import pandas as pd

from bench.reporting import write_report
from bench.runner import run_suite
from bench.store import ResultStore
from bench.suites import load_suite


def test_model_instances_and_prune_tasks(tiny_llama_dir, tmp_path):
    suite_file = tmp_path / "m.toml"
    suite_file.write_text(f"""
name = "tinymodel"
[[instances]]
kind = "model"
model = "{tiny_llama_dir}"
layers = ["*.1.mlp.*"]
crops = 1
crop_rows = 2
crop_cols = 16
full = true
nsamples = 4
seqlen = 32
optional = false

[[solvers]]
name = "wanda"
[[solvers]]
name = "swap"
warm_start = "wanda"

[[prune]]
model = "{tiny_llama_dir}"
solver = "swap"
warm_start = "wanda"
nsamples = 4
seqlen = 32
eval_windows = 4

[[prune]]
model = "{tiny_llama_dir}"
solver = "magnitude"
nsamples = 4
seqlen = 32
eval_windows = 4
""")
    store = ResultStore(tmp_path / "s.sqlite")
    summary = run_suite(load_suite(str(suite_file)), store, workers=1, progress=False, log=lambda m: None)
    rows = store.results(summary.run_id)
    infos = [json.loads(r["instance_json"]) for r in rows]
    # 3 MLP layers of block 1 (gate, up, down), each full + 1 crop, times 2 solver configurations
    assert len(rows) == 12 and summary.errors == 0
    assert {i["family"] for i in infos} == {"layer", "crop-d16"}
    assert all(i["model"] == tiny_llama_dir.name and i["nsamples"] == "4" and "layer" in i for i in infos)
    for r in rows:
        if r["solver"] == "wanda+swap":
            assert r["objective"] <= json.loads(r["extra_json"])["warm_start_objective"] * (1 + 1e-12)
    prune = store.prune_results(summary.run_id)
    assert len(prune) == 2
    for p in prune:
        assert p["dense_ppl"] > 1 and p["pruned_ppl"] > 1
        layers = json.loads(p["layers_json"])
        assert len(layers) == 14  # 2 blocks x 7 linear layers
    swap = next(p for p in prune if p["solver"] == "swap")
    assert all(rec["objective"] <= rec["warm_start_objective"] * (1 + 1e-9) for rec in json.loads(swap["layers_json"]))
    files = write_report(store, summary.run_id, tmp_path / "rep").files
    md = (tmp_path / "rep" / "report.md").read_text()
    table = pd.DataFrame(prune)
    assert f"{table['pruned_ppl'].min():.2f}" in md and "wanda+swap" in md
    assert any(f.name == "fig_swap_convergence.png" for f in files)
    again = run_suite(load_suite(str(suite_file)), store, workers=1, progress=False, log=lambda m: None)
    assert again.done == 0 and again.skipped == 14  # prune tasks are resumable too


def test_model_that_fails_to_load_is_an_error_unless_optional(tmp_path):
    import pytest

    from bench.errors import SuiteError
    from bench.model_source import materialise_model

    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # looks like a model directory, cannot be loaded
    src = {"kind": "model", "model": str(broken), "layers": "*"}
    with pytest.raises(SuiteError, match=r"model instance source \(.*broken-model\): .*set optional = true") as info:
        materialise_model(src, tmp_path / "cache", log=lambda m: None)  # optional defaults to false
    assert "\n" not in str(info.value)
    messages = []
    assert materialise_model({**src, "optional": True}, tmp_path / "cache", log=messages.append) == []
    assert len(messages) == 1 and messages[0].startswith(f"skipping model instances ({broken})")
