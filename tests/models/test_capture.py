"""Layer discovery and statistics capture on tiny GPT-2 / OPT / Llama models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.capture import LayerStats, block_layers, capture_block_calls, find_blocks, forward_stats_until, run_block


def test_layers_found_by_structure(arch, tiny_model):
    model = tiny_model(arch)
    prefix, blocks = find_blocks(model)
    layers = block_layers(model)
    assert len(blocks) == len(layers) == 2
    names = [lay.name for blk in layers for lay in blk]
    assert all(name.startswith(prefix + ".") for name in names)
    assert not any("lm_head" in n or "embed" in n or "wte" in n for n in names)
    expected = {"gpt2": 4, "opt": 6, "llama": 7}[arch]
    assert [len(blk) for blk in layers] == [expected, expected]
    for lay in layers[0]:
        w = lay.module.weight
        assert lay.weight().shape == ((w.shape[1], w.shape[0]) if lay.transposed else tuple(w.shape))
    assert any(lay.transposed for lay in layers[0]) == (arch == "gpt2")  # GPT-2 Conv1D


def test_replayed_blocks_reproduce_model_hidden_states(arch, tiny_model, random_windows):
    model = tiny_model(arch)
    ids = random_windows(3, 12)
    calls = capture_block_calls(model, ids)
    with torch.no_grad():
        ref = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    _, blocks = find_blocks(model)
    h = calls.hidden
    torch.testing.assert_close(h, ref[0])
    h = run_block(blocks[0], h, calls.calls[0])
    torch.testing.assert_close(h, ref[1], rtol=1e-5, atol=1e-5)


def test_captured_gram_equals_xtx_of_manual_forward(arch, tiny_model, random_windows, reference_inputs):
    model = tiny_model(arch)
    ids = random_windows(5, 16)
    layers = block_layers(model)[1]
    x_ref = reference_inputs(model, layers, ids)
    # replay path (two batches, so accumulation across batches is exercised)
    _, blocks = find_blocks(model)
    recorded = [capture_block_calls(model, batch) for batch in (ids[:2], ids[2:])]
    with LayerStats(layers) as stats:
        for calls in recorded:
            h = run_block(blocks[0], calls.hidden, calls.calls[0])
            run_block(blocks[1], h, calls.calls[1])
    forward_accs = forward_stats_until(model, 1, [ids[:3], ids[3:]], layers)
    for lay in layers:
        x = x_ref[lay.name]
        for acc in (stats.acc[lay.name], forward_accs[lay.name]):
            assert acc.tokens == x.shape[0] == 5 * 16
            assert acc.gram.dtype == torch.float64
            torch.testing.assert_close(acc.gram, x.T @ x, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(acc.mean, x.mean(0), rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(acc.var, x.var(0, unbiased=False), rtol=1e-5, atol=1e-6)


def test_apply_mask_conv1d_is_transposed(tiny_model):
    model = tiny_model("gpt2")
    lay = block_layers(model)[0][0]
    assert lay.transposed
    mask = torch.ones(lay.shape, dtype=torch.bool)
    mask[0, :3] = False  # output row 0, inputs 0..2
    lay.apply_mask(mask)
    assert (lay.module.weight[:3, 0] == 0).all() and (lay.module.weight[3:, 0] != 0).all()


def test_model_without_blocks_is_refused():
    from models.capture import ModelStructureError

    with pytest.raises(ModelStructureError, match="no list of repeated blocks"):
        find_blocks(nn.Sequential(nn.Embedding(4, 4)))
