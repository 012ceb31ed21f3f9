"""Storage precision (``--dtype``), the block-wise placement decision, and restoring dense weights
from the memory-mapped checkpoint / an on-disk snapshot (no copy in memory)."""

from __future__ import annotations

import json

import pytest
import torch

from models.errors import ModelLoadError
from models.loading import load_model
from models.offload import decide_placement, materialised
from models.precision import checkpoint_dtype, compute_dtype, parse_dtype
from models.restore import DenseWeights, prunable_parameters
from models.sequential import PruneSettings, prune_model
from tests.conftest import make_random_windows, make_tiny_model, save_tiny_llama


@pytest.fixture(scope="module")
def half_llama_dir(tmp_path_factory):
    """The tiny Llama with its tokenizer, saved in float16 (config torch_dtype float16)."""
    path = save_tiny_llama(tmp_path_factory.mktemp("half-llama"))
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).to(torch.float16).save_pretrained(path)
    return path


def test_parse_dtype_and_compute_rule():
    assert parse_dtype(None) == "auto" and parse_dtype("BFloat16") == "bfloat16" and parse_dtype(torch.float16) == "float16"
    with pytest.raises(ModelLoadError, match="dtype must be one of"):
        parse_dtype("int8")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compute_dtype(torch.float16, cpu) == torch.float32 and compute_dtype(torch.bfloat16, cpu) == torch.float32
    assert compute_dtype(torch.float16, cuda) == torch.float16 and compute_dtype(torch.float32, cpu) == torch.float32


def test_placement_auto_offloads_half_precision_on_cpu_only():
    cpu = torch.device("cpu")
    assert decide_placement("auto", cpu, torch.float16, 10).offload
    assert not decide_placement("auto", cpu, torch.float32, 10).offload
    off = decide_placement("off", cpu, torch.float16, 10)
    assert not off.offload and off.compute_dtype == torch.float16
    assert decide_placement("on", cpu, torch.float32, 10).offload


def test_auto_dtype_is_the_checkpoints(half_llama_dir, tiny_llama_dir):
    assert checkpoint_dtype(half_llama_dir) == torch.float16
    half = load_model(half_llama_dir, device="cpu", dtype="auto", offload="auto")
    assert {p.dtype for p in half.model.parameters()} == {torch.float16}
    assert half.placement.offload and half.placement.metadata()["compute_dtype"] == "float32"
    assert json.loads((half_llama_dir / "config.json").read_text())["dtype"] == "float16"
    single = load_model(tiny_llama_dir, device="cpu", dtype="auto")
    assert {p.dtype for p in single.model.parameters()} == {torch.float32}
    asked = load_model(tiny_llama_dir, device="cpu", dtype="bfloat16", offload="off")
    assert {p.dtype for p in asked.model.parameters()} == {torch.bfloat16} and not asked.placement.offload


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_restore_from_checkpoint_is_exact(half_llama_dir, dtype):
    loaded = load_model(half_llama_dir, device="cpu", dtype=dtype, offload="on")
    dense = _state(loaded.model)
    weights = DenseWeights(loaded.model, loaded.checkpoint_files)
    assert weights.source == "checkpoint"
    prune_model(loaded.model, make_random_windows(2, 16), PruneSettings("wanda", 0.5), progress=False,
                placement=loaded.placement)
    changed = [k for k, v in loaded.model.state_dict().items() if not torch.equal(v, dense[k])]
    assert changed and set(changed) <= set(prunable_parameters(loaded.model))
    weights.restore()
    assert all(torch.equal(v, dense[k]) for k, v in loaded.model.state_dict().items())


def test_restore_falls_back_to_a_snapshot_when_the_checkpoint_differs(half_llama_dir):
    loaded = load_model(half_llama_dir, device="cpu", dtype="float32", offload="off")
    with torch.no_grad():
        next(iter(prunable_parameters(loaded.model).values())).mul_(2.0)  # no longer the checkpoint's values
    dense = _state(loaded.model)
    weights = DenseWeights(loaded.model, loaded.checkpoint_files)
    assert weights.source == "snapshot"
    prune_model(loaded.model, make_random_windows(2, 16), PruneSettings("magnitude", 0.5), progress=False)
    weights.restore()
    assert all(torch.equal(v, dense[k]) for k, v in loaded.model.state_dict().items())
    no_files = DenseWeights(make_tiny_model("gpt2"), [])
    assert no_files.source == "snapshot"


def test_materialised_never_writes_back_and_restores_storage():
    model = make_tiny_model("llama").to(torch.float16)
    block = model.model.layers[0]
    stored = block.mlp.up_proj.weight.data
    with materialised(block, torch.device("cpu"), torch.float32):
        assert block.mlp.up_proj.weight.dtype == torch.float32
        block.mlp.up_proj.weight.data.zero_()
    assert block.mlp.up_proj.weight.data_ptr() == stored.data_ptr() and stored.abs().sum() > 0  # not written back
    assert block.mlp.up_proj.weight.dtype == torch.float16


def test_cli_prune_records_dtype_and_offload(cli, half_llama_dir):
    proc = cli("prune", half_llama_dir, "--solver", "wanda", "--nsamples", "2", "--seqlen", "16", "--eval-windows", "2",
               "--json", "--no-progress", check=True)
    out = json.loads(proc.stdout)
    assert out["dtype"] == "float16" and out["offload"] is True and out["protocol"]["compute_dtype"] == "float32"
    assert len(out["block_seconds"]) == 2 and out["pruned_ppl"] > 0
    proc = cli("prune", half_llama_dir, "--solver", "wanda", "--dtype", "float64")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_extract_block_wise_from_half_storage_matches_float32(tmp_path):
    """``extract`` of a float16 model block by block (float32 compute) writes the statistics the
    float32 model with the same weights gives on the whole-model path."""
    from models.extract import ExtractSettings, extract_instances
    from models.offload import Placement
    from solvers.instance_io import load_instance

    windows = make_random_windows(2, 16)
    settings = ExtractSettings(["*.1.mlp.down_proj"], crops=0)
    half = make_tiny_model("llama").to(torch.float16)
    reference = make_tiny_model("llama").to(torch.float16).to(torch.float32)
    placement = Placement(torch.device("cpu"), torch.float16, torch.float32, True)
    (got,) = extract_instances(half, windows, settings, tmp_path / "half", progress=False, placement=placement)
    (want,) = extract_instances(reference, windows, settings, tmp_path / "ref", progress=False)
    a, b = load_instance(tmp_path / "half" / got["file"]), load_instance(tmp_path / "ref" / want["file"])
    assert torch.equal(a.weight, b.weight)
    assert torch.allclose(a.gram, b.gram, rtol=1e-6, atol=1e-9 * float(b.gram.abs().max()))
    assert all(p.dtype == torch.float16 for p in half.parameters())


def test_block_wise_solve_holds_no_working_copy_and_matches_float32(monkeypatch):
    """Block-wise from float16 storage: while a layer is solved its block is back as stored (float16, no
    float32 working copy held), and the masks equal those of the float32 model with the same weights."""
    import models.sequential as sequential
    from models.offload import Placement

    seen = []
    real = sequential.solve_layer

    def recording(layer, *args, **kwargs):
        seen.append(layer.module.weight.dtype)
        return real(layer, *args, **kwargs)

    windows = make_random_windows(2, 16)
    half = make_tiny_model("llama").to(torch.float16)
    reference = make_tiny_model("llama").to(torch.float16).to(torch.float32)
    monkeypatch.setattr(sequential, "solve_layer", recording)
    prune_model(half, windows, PruneSettings("wanda", 0.5), progress=False,
                placement=Placement(torch.device("cpu"), torch.float16, torch.float32, True))
    assert seen and set(seen) == {torch.float16}
    prune_model(reference, windows, PruneSettings("wanda", 0.5), progress=False)
    for name, p in half.named_parameters():
        if name.endswith("proj.weight"):
            assert torch.equal(p == 0, reference.get_parameter(name) == 0), name
