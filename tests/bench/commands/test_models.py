"""CLI smoke tests for ``maskbench prune`` / ``extract`` on a tiny Llama saved to disk.

The model directory is the ``tiny_llama_dir`` fixture of tests/conftest.py (nothing is downloaded).
"""

from __future__ import annotations

import json

import pytest
import torch

from solvers import load_instance


@pytest.mark.slow
def test_prune_json_and_save(cli, tiny_llama_dir, tmp_path):
    out = tmp_path / "pruned"
    proc = cli("prune", tiny_llama_dir, "--solver", "sparsegpt", "--warm-start", "wanda", "--sparsity", "0.5",
               "--nsamples", "4", "--seqlen", "32", "--eval-windows", "4", "--save", out, "--json", check=True)
    res = json.loads(proc.stdout)
    for key in ("model", "solver", "warm_start", "sparsity", "pattern", "dense_ppl", "pruned_ppl", "seconds",
                "layers"):
        assert key in res, key
    assert res["solver"] == "sparsegpt" and res["warm_start"] == "wanda" and res["sparsity"] == 0.5
    assert len(res["layers"]) == 14 and res["dense_ppl"] > 1 and res["pruned_ppl"] > 1
    for lay in res["layers"]:
        assert set(lay) >= {"name", "shape", "warm_start_objective", "objective"}
    proto = res["protocol"]
    assert proto["calibration"] == "pydoc_data.topics" and proto["nsamples"] == "4" and proto["seqlen"] == "32"
    assert proto["seed"] == "0" and proto["propagation"] == "pruned"
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert any(p.name.endswith(".safetensors") for p in out.iterdir())
    w = reloaded.model.layers[1].mlp.down_proj.weight
    assert ((w == 0).sum(dim=1) == 32).all()  # d_in 64, half pruned per row


def test_prune_table_two_four_with_text_file(tiny_llama_dir, tmp_path, capsys):
    from bench.cli import main  # in-process: same parser and command, no interpreter start-up

    text = tmp_path / "corpus.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 400)
    assert main(["prune", str(tiny_llama_dir), "--solver", "wanda", "--pattern", "2:4", "--nsamples", "4", "--seqlen",
                 "32", "--calib-text", str(text), "--propagation", "dense", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.index("dense perplexity") < out.index("layer")  # dense ppl printed first
    assert "model.layers.1.mlp.down_proj" in out and "pruned perplexity" in out and "2:4" in out
    assert "calibration=corpus.txt" in out and "propagation=dense" in out


@pytest.mark.slow
def test_extract_writes_instances_and_crops(cli, tiny_llama_dir, tmp_path):
    out = tmp_path / "inst"
    proc = cli("extract", tiny_llama_dir, "--layers", "*.1.mlp.*", "--out", out, "--nsamples", "4", "--seqlen", "32",
               "--crops", "2", "--crop-rows", "4", "--crop-cols", "8", "--no-progress", check=True)
    assert "%|" not in proc.stderr  # no progress bar, transformers' weight loading included
    manifest = json.loads((out / "manifest.json").read_text())
    files = [m["file"] for m in manifest["instances"]]
    assert len(files) == 3 * 3  # gate/up/down: full + 2 crops each
    full = load_instance(out / "model.layers.1.mlp.down_proj.safetensors")
    crop = load_instance(out / "model.layers.1.mlp.down_proj.crop0.safetensors")
    assert full.weight.shape == (32, 64) and crop.weight.shape == (4, 8) and crop.pattern.k == 4
    rows = torch.tensor([int(x) for x in crop.metadata["crop_rows"].split(",")])
    cols = torch.tensor([int(x) for x in crop.metadata["crop_cols"].split(",")])
    torch.testing.assert_close(crop.weight, full.weight[rows][:, cols])
    torch.testing.assert_close(crop.gram, full.gram[cols][:, cols])
    assert crop.metadata["parent_instance_id"] == full.instance_id()
    for key in ("model", "layer", "calibration", "nsamples", "seqlen", "seed", "propagation"):
        assert key in full.metadata, key
    assert full.metadata["propagation"] == "dense" and full.metadata["layer_type"] == "mlp.down_proj"


def test_errors_are_one_line(tmp_path, capsys):
    from bench.cli import main

    assert main(["prune", str(tmp_path / "missing"), "--solver", "wanda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("maskbench: error:") and "no such local directory" in err
    assert main(["prune", str(tmp_path), "--solver", "wanda"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_prune_reconstruct_and_sparsegpt_update(tiny_llama_dir, tmp_path, capsys):
    """``--reconstruct`` and ``--set update_weights=true`` write updated weights: both losses per layer in --json."""
    import json

    from bench.cli import main

    text = tmp_path / "corpus.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 400)
    common = ["--nsamples", "4", "--seqlen", "32", "--calib-text", str(text), "--no-progress", "--json",
              "--eval-windows", "2"]
    for extra, label in ((["--solver", "wanda+swap", "--reconstruct"], "refit"),
                         (["--solver", "sparsegpt", "--set", "update_weights=true"], "sparsegpt")):
        assert main(["prune", str(tiny_llama_dir), *extra, *common]) == 0
        res = json.loads(capsys.readouterr().out)
        assert all(lay["weight_update"] == label and lay["objective_updated"] < lay["objective"]
                   for lay in res["layers"])
    assert main(["prune", str(tiny_llama_dir), "--solver", "wanda+swap", "--reconstruct", "--nsamples", "4",
                 "--seqlen", "32", "--calib-text", str(text), "--no-progress", "--eval-windows", "2"]) == 0
    assert "weights updated (refit) in 14 layers" in capsys.readouterr().out
