"""DSnoT's released whole-model default: only attention layers are refined; MLP layers keep Wanda's mask."""

import pytest
import torch

from models.baseline_defaults import solver_for_layer
from models.sequential import PruneSettings, prune_model


def test_solver_for_layer_follows_skip_layer_mlp():
    assert solver_for_layer("wanda+dsnot", None, "mlp.up_proj") == ("wanda", None)
    assert solver_for_layer("wanda+dsnot", None, "self_attn.o_proj") == ("wanda+dsnot", None)
    assert solver_for_layer("dsnot", "sparsegpt", "mlp.down_proj") == ("sparsegpt", None)
    assert solver_for_layer("dsnot", None, "mlp.down_proj") == ("wanda", None)
    assert solver_for_layer("wanda+dsnot", None, "mlp.up_proj", "all") == ("wanda+dsnot", None)
    assert solver_for_layer("wanda+swap", "x", "mlp.up_proj") == ("wanda+swap", "x")
    with pytest.raises(ValueError):
        solver_for_layer("wanda", None, "mlp.up_proj", "some")


def _masks(model):  # dense propagation: each layer sees the dense model's inputs in both runs
    return {n: (p == 0) for n, p in model.named_parameters() if p.dim() == 2 and ".layers." in n}


@pytest.mark.parametrize("scope", ["attention", "all"])
def test_whole_model_dsnot_refines_the_released_layers(tiny_model, random_windows, scope):
    windows = random_windows(8, 64)
    ref = tiny_model("llama")
    prune_model(ref, windows, PruneSettings("wanda", 0.5, propagation="dense"), progress=False)
    model = tiny_model("llama")
    report = prune_model(model, windows, PruneSettings("wanda+dsnot", 0.5, propagation="dense", dsnot_layers=scope), progress=False)
    wanda, dsnot = _masks(ref), _masks(model)
    mlp = [n for n in wanda if ".mlp." in n]
    attn = [n for n in wanda if ".self_attn." in n]
    changed = {n for n in wanda if not torch.equal(wanda[n], dsnot[n])}
    if scope == "attention":
        assert not changed & set(mlp)
        assert all(r.warm_start is None for r in report.layers if ".mlp." in r.name)
    else:
        assert changed & set(mlp)
    assert changed & set(attn)
