"""Ten decoder architectures prune, propagate and evaluate, whole-model and block by block.

Each is a 2-block random-init model from its transformers config (nothing downloaded). For each:
Wanda at 50 % prunes every prunable layer of both blocks (pruned-so-far propagation), the pruned
model's perplexity is finite and differs from the dense one; and the block-wise path
(:mod:`models.offload`, offloading to the CPU) selects the same masks and gives the same
perplexity as the whole-model path, within float tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.capture import block_layers
from models.offload import Placement, blockwise_perplexity
from models.perplexity import perplexity
from models.sequential import PruneSettings, prune_model
from tests.conftest import VOCAB, make_random_windows, make_tiny_model

SMALL = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def build(arch: str) -> torch.nn.Module:
    """A seeded 2-block model of ``arch`` (fp32, eval mode)."""
    import transformers as tf

    if arch in ("gpt2", "opt", "llama"):
        return make_tiny_model(arch)
    torch.manual_seed(0)
    if arch == "mistral":
        model = tf.MistralForCausalLM(tf.MistralConfig(**SMALL, sliding_window=None))
    elif arch == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**SMALL))
    elif arch == "gemma2":
        model = tf.Gemma2ForCausalLM(tf.Gemma2Config(**SMALL, head_dim=8, sliding_window=8))
    elif arch == "gemma3":
        model = tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(**SMALL, head_dim=8, sliding_window=8))
    elif arch == "phi3":
        model = tf.Phi3ForCausalLM(tf.Phi3Config(**SMALL))
    elif arch == "gpt_neox":
        model = tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                                       num_hidden_layers=2, num_attention_heads=4,
                                                       max_position_embeddings=64))
    elif arch == "falcon":
        model = tf.FalconForCausalLM(tf.FalconConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=4, new_decoder_architecture=True,
                                                     num_kv_heads=2))
    else:
        raise ValueError(arch)
    return model.to(torch.float32).eval()


ARCHITECTURES = ("llama", "mistral", "qwen2", "gemma2", "gemma3", "phi3", "opt", "gpt2", "gpt_neox", "falcon")
CPU_BLOCKWISE = Placement(torch.device("cpu"), torch.float32, torch.float32, True)


def masks_of(model) -> dict[str, torch.Tensor]:
    return {lay.name: lay.weight() != 0 for blk in block_layers(model) for lay in blk}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_prune_propagate_evaluate_whole_and_blockwise(arch):
    windows = make_random_windows(4, 16, seed=1)
    held_out = make_random_windows(3, 16, seed=2).reshape(-1)
    settings = PruneSettings("wanda", 0.5)

    whole = build(arch)
    dense_ppl = perplexity(whole, held_out, 16, progress=False)
    assert dense_ppl.ppl == pytest.approx(blockwise_perplexity(whole, held_out, 16, CPU_BLOCKWISE, progress=False).ppl,
                                          rel=1e-4)
    report = prune_model(whole, windows, settings, progress=False)
    layers = [lay for blk in block_layers(whole) for lay in blk]
    assert {r.name for r in report.layers} == {lay.name for lay in layers}
    assert len(report.block_seconds) == 2
    for lay in layers:  # every row keeps round(0.5 · d_in) weights (random init has no exact zeros)
        kept = (lay.weight() != 0).sum(dim=1)
        assert kept.eq(lay.shape[1] - round(0.5 * lay.shape[1])).all(), lay.name
    pruned_ppl = perplexity(whole, held_out, 16, progress=False)
    assert math.isfinite(pruned_ppl.ppl) and pruned_ppl.ppl != pytest.approx(dense_ppl.ppl, rel=1e-6)

    blockwise = build(arch)
    prune_model(blockwise, windows, settings, progress=False, placement=CPU_BLOCKWISE)
    expected, got = masks_of(whole), masks_of(blockwise)
    for name, mask in expected.items():  # ties aside, the same masks: allow a sliver of flipped pairs
        assert (mask != got[name]).float().mean() <= 0.01, name
    assert blockwise_perplexity(blockwise, held_out, 16, CPU_BLOCKWISE, progress=False).ppl == pytest.approx(
        pruned_ppl.ppl, rel=1e-3)


def test_half_precision_storage_keeps_its_dtype_and_matches_float32_compute():
    """A float16 model pruned block by block (float32 compute on the CPU) stays float16 and gets the
    masks the float32 model with the same (float16-rounded) weights gets on the whole-model path."""
    windows = make_random_windows(4, 16, seed=1)
    half = build("llama").to(torch.float16)
    reference = build("llama").to(torch.float16).to(torch.float32)
    placement = Placement(torch.device("cpu"), torch.float16, torch.float32, True)
    prune_model(half, windows, PruneSettings("wanda", 0.5), progress=False, placement=placement)
    prune_model(reference, windows, PruneSettings("wanda", 0.5), progress=False)
    assert all(p.dtype == torch.float16 for p in half.parameters())
    for name, mask in masks_of(reference).items():
        assert (mask != masks_of(half)[name]).float().mean() <= 0.01, name
    for (name, p), q in zip(half.named_parameters(), reference.parameters()):
        assert torch.equal(p.float(), q), name  # masked weights written back exactly
