"""Check the dense model before pruning: a broken checkpoint stops the run with one line.

The most reported failure of pruning runs is not the pruning: a checkpoint whose weights did not
load (or loaded scrambled), a tokenizer of another model, the wrong split. All of them show in
the dense perplexity, measured anyway before pruning, so it is checked first.

**Threshold: twice the vocabulary size, ``2·V``.** A model that predicts every token uniformly
has perplexity exactly ``V`` (``−log(1/V)`` nats per token), and a model that knows nothing but
hedges (a random initialisation with small weights: nearly uniform logits) stays close to ``V``.
Perplexity above ``2·V`` means *confidently wrong* — worse than knowing nothing — which is what
scrambled weights or a mismatched tokenizer produce, and which no trained checkpoint on text of
its language does: published WikiText-2 perplexities of working checkpoints lie between about 3
and 40 (LLaMA-2-7B 5.1 at 4096 tokens, OPT-125M 27.7, GPT-2 small 29.4), 0.01–0.1 % of their
vocabularies (32 000, 50 272, 50 257); SmolLM2-135M on the pydoc text at 256 tokens is 12.2 of
49 152. So the check never stops a working model, stops the confidently broken ones, and lets a
random-initialised test model (≈ ``V``) pass — it is not broken by pruning's measure, and the
test suite prunes such models. A non-finite perplexity (NaN/inf logits: fp16 overflow, a
corrupted tensor) always stops the run. ``--no-dense-check`` skips the check.
"""

from __future__ import annotations

import math

from models.errors import ModelLoadError
from models.perplexity import Perplexity

THRESHOLD_FACTOR = 2.0


def vocabulary_size(model) -> int:
    """The size of the model's output distribution (the LM head's rows)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def dense_threshold(vocab: int) -> float:
    return THRESHOLD_FACTOR * vocab


def check_dense(ppl: Perplexity, vocab: int, model_name: str, dataset: str) -> None:
    """Raise :class:`ModelLoadError` (one line) when the dense perplexity is not finite or above ``2·V``."""
    limit = dense_threshold(vocab)
    if not math.isfinite(ppl.ppl):
        raise ModelLoadError(f"dense check: {model_name} has perplexity {ppl.ppl} on {dataset} (not finite: NaN/inf "
                             "logits — a corrupted checkpoint or an overflowing dtype); nothing was pruned "
                             "(--no-dense-check skips this check)")
    if ppl.ppl > limit:
        raise ModelLoadError(f"dense check: {model_name} has perplexity {ppl.ppl:.4g} on {dataset}, above {limit:.0f} "
                             f"(twice its vocabulary of {vocab}: worse than guessing) — a broken or scrambled "
                             "checkpoint, a tokenizer of another model or the wrong data; nothing was pruned "
                             "(--no-dense-check skips this check)")
