"""Issue 34, part 4: inputs are validated before any work, each failure one line naming what is wrong."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from tests.safety.helpers import assert_one_line_error, call, snapshot

GENERATED = """
name = "{name}"
[[instances]]
kind = "generated"
family = "tiny"
d_in = {d_in}
d_out = 3
pattern = ["{pattern}"]
seeds = [0]
[[solvers]]
name = "wanda"
"""


@pytest.mark.parametrize("d_in, pattern, words", [(12, "3:2", "N=3 is outside"), (10, "2:4", "does not divide d_in=10")])
def test_suite_pattern_errors_name_the_file_and_entry_before_a_store_exists(tmp_path, capsys, d_in, pattern, words):
    suite = tmp_path / "s.toml"
    suite.write_text(GENERATED.format(name="s", d_in=d_in, pattern=pattern))
    store = tmp_path / "r.sqlite"
    code, _, err = call(capsys, "run", suite, "--store", store, "--no-report")
    assert_one_line_error(code, err, str(suite), "instances[0].pattern", words)
    assert not store.exists() and not (tmp_path / "instances").exists()


def test_suite_empty_glob_is_refused_at_load(tmp_path, capsys):
    suite = tmp_path / "g.toml"
    suite.write_text('name = "g"\n[[instances]]\nkind = "files"\npath = "nothing/*.safetensors"\n'
                     '[[solvers]]\nname = "wanda"\n')
    store = tmp_path / "r.sqlite"
    code, _, err = call(capsys, "run", suite, "--store", store, "--no-report")
    assert_one_line_error(code, err, str(suite), "instances[0].path", "no instance files")
    assert not store.exists()


@pytest.mark.parametrize("argv, words", [
    (["run", "quick", "--workers", "-1"], "--workers"),
    (["run", "quick", "--threads-per-task", "0"], "--threads-per-task"),
    (["generate", "--sparsity", "1.5", "-o", "x.safetensors"], "--sparsity"),
    (["generate", "--pattern", "3:2", "-o", "x.safetensors"], "N=3"),
    (["solve", "x", "--solver", "wanda", "--time-limit", "-1"], "--time-limit"),
    (["solve", "x", "--solver", "wanda", "--time-limit", "nan"], "--time-limit"),
    (["prune", "--solver", "wanda", "--nsamples", "0"], "--nsamples"),
    (["prune", "--solver", "wanda", "--pattern", "3:2"], "N=3"),
])
def test_cli_ranges_fail_at_parse_time_in_one_line(tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    code, _, err = call(capsys, *argv)
    assert_one_line_error(code, err, words)
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_unknown_instance_and_mask_versions_are_refused(tmp_path, capsys):
    inst = tmp_path / "i.safetensors"
    assert call(capsys, "generate", "--family", "tiny", "--d-in", "8", "--d-out", "2", "-o", inst)[0] == 0
    from safetensors import safe_open

    with safe_open(str(inst), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    future = tmp_path / "v99.safetensors"
    save_file(tensors, str(future), metadata={**meta, "version": "99"})
    before = snapshot(future)
    code, _, err = call(capsys, "solve", future, "--solver", "wanda")
    assert_one_line_error(code, err, "version '99'")
    mask = tmp_path / "m.safetensors"
    save_file({"mask": torch.ones(2, 8, dtype=torch.uint8)}, str(mask), metadata={"format": "maskbench-mask",
                                                                                   "version": "99"})
    code, _, err = call(capsys, "eval", inst, mask)
    assert_one_line_error(code, err, "version '99'")
    assert snapshot(future) == before


def test_non_utf8_calibration_text_is_refused_before_loading(tiny_llama_dir, tmp_path, capsys):
    text = tmp_path / "latin.txt"
    text.write_bytes("caf\u00e9 na\u00efve r\u00e9sum\u00e9 ".encode("latin-1") * 200)
    code, out, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--calib-text", text)
    assert_one_line_error(code, err, "latin.txt", "not valid utf-8", "--encoding")
    assert "perplexity" not in out


def test_explicit_encoding_is_honoured():
    import tempfile
    from pathlib import Path

    from models.text_files import read_text

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_bytes("caf\u00e9".encode("latin-1"))
        assert read_text(path, "latin-1") == "caf\u00e9"


@pytest.mark.parametrize("pattern", ["2:4", "4:8"])
def test_prune_pattern_that_does_not_fit_the_widths_is_refused_before_loading(tiny_llama_dir, tmp_path, capsys,
                                                                              pattern):
    import json

    model = tmp_path / "odd"
    shutil.copytree(tiny_llama_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["intermediate_size"] = 66  # not divisible by 4 or 8 (the weights are never read)
    (model / "config.json").write_text(json.dumps(config))
    code, out, err = call(capsys, "prune", model, "--solver", "magnitude", "--pattern", pattern)
    assert_one_line_error(code, err, "does not divide", "66")
    assert "perplexity" not in out


def _copy(tiny_llama_dir, tmp_path, name):
    model = tmp_path / name
    shutil.copytree(tiny_llama_dir, model)
    return model


def test_model_without_tokenizer_is_one_line(tiny_llama_dir, tmp_path, capsys):
    model = _copy(tiny_llama_dir, tmp_path, "notok")
    for name in ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json"):
        (model / name).unlink(missing_ok=True)
    code, _, err = call(capsys, "prune", model, "--solver", "magnitude")
    assert_one_line_error(code, err, "no tokenizer")


def test_truncated_checkpoint_is_one_line(tiny_llama_dir, tmp_path, capsys):
    model = _copy(tiny_llama_dir, tmp_path, "trunc")
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1000])
    code, _, err = call(capsys, "prune", model, "--solver", "magnitude")
    assert_one_line_error(code, err, "not a complete safetensors file")


def test_pickled_checkpoint_is_never_unpickled(tiny_llama_dir, tmp_path, capsys):
    model = _copy(tiny_llama_dir, tmp_path, "pickled")
    next(model.glob("*.safetensors")).unlink()
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (model / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Boom()}))
    code, _, err = call(capsys, "prune", model, "--solver", "magnitude")
    assert_one_line_error(code, err, "never unpickles")
    assert not marker.exists()
