"""Layer discovery and statistics capture on tiny GPT-2 / OPT / Llama models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.capture import (
    LayerStats,
    PrunableLayer,
    block_layers,
    capture_block_calls,
    find_blocks,
    forward_stats_until,
    run_block,
    run_block_for_statistics,
)


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
    for b, block in enumerate(blocks[:-1]):  # the last block's output is normed in ref
        h = run_block(block, h, calls.calls[b])
        torch.testing.assert_close(h, ref[b + 1], rtol=1e-5, atol=1e-5)


def _full_forward_calls(model, ids):
    """Every block's call as the model's complete forward makes it (no block passed through)."""
    _, blocks = find_blocks(model)
    seen = []
    handles = [blk.register_forward_pre_hook(lambda m, a, k: seen.append((a, dict(k))), with_kwargs=True)
               for blk in blocks]
    try:
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return seen


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a is b or a == b)


def test_passed_through_blocks_record_the_calls_of_the_full_forward(arch, tiny_model, random_windows):
    """Capture computes block 0 only; what later blocks are passed equals the full forward's."""
    model = tiny_model(arch)
    ids = random_windows(2, 10)
    captured = capture_block_calls(model, ids)
    full = _full_forward_calls(model, ids)
    assert len(captured.calls) == len(full) == 2
    for call, (args, kwargs) in zip(captured.calls, full):
        rest_args, rest_kwargs = (args, {k: v for k, v in kwargs.items() if k != "hidden_states"})
        rest_args = rest_args if call.hidden_as_kwarg else rest_args[1:]
        assert _same(call.args, tuple(rest_args)) and _same(call.kwargs, rest_kwargs)


def test_capture_restores_block_forwards(tiny_model, random_windows):
    """Only block 0 is computed; the pass-through is undone, and a forward set on an instance (as
    accelerate's hooks do) survives."""
    model = tiny_model("llama")
    _, blocks = find_blocks(model)
    own = blocks[1].forward
    blocks[0].forward = blocks[0].forward  # an instance attribute, like a dispatch hook
    computed = []
    for b, blk in enumerate(blocks):
        blk.mlp.down_proj.register_forward_hook(lambda *a, b=b: computed.append(b))
    capture_block_calls(model, random_windows(1, 8))
    assert computed == [0]  # block 1 was passed through
    assert "forward" not in blocks[1].__dict__ and blocks[1].forward == own
    assert "forward" in blocks[0].__dict__


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


class _DictBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, hidden, scale):
        return {"hidden": self.proj(hidden) * scale}


class _DictModel(nn.Module):
    """Blocks returning a dict: capture cannot pass them through and computes every block."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_DictBlock() for _ in range(3)])

    def forward(self, input_ids, use_cache=False):
        hidden = input_ids.to(torch.float32).unsqueeze(-1).expand(*input_ids.shape, 4)
        for i, blk in enumerate(self.blocks):
            hidden = blk(hidden, scale=float(i + 1))["hidden"]
        return hidden


def test_blocks_with_other_outputs_are_computed_not_passed_through():
    model = _DictModel()
    calls = []
    for blk in model.blocks:
        blk.proj.register_forward_hook(lambda *a: calls.append(1))
    record = capture_block_calls(model, torch.arange(6).reshape(2, 3))
    assert len(calls) == 3 and [c.kwargs["scale"] for c in record.calls] == [1.0, 2.0, 3.0]
    assert all("forward" not in blk.__dict__ for blk in model.blocks)


def test_statistics_pass_stopped_early_equals_full_pass(arch, tiny_model, random_windows):
    """Stopped once the last layer took its input: no output, the full pass's statistics bit for bit."""
    model = tiny_model(arch)
    _, blocks = find_blocks(model)
    layers = block_layers(model)[1]
    calls = capture_block_calls(model, random_windows(3, 12))
    hidden = run_block(blocks[0], calls.hidden, calls.calls[0])
    last = layers[-1].module
    ran = []
    handle = last.register_forward_hook(lambda *_: ran.append(1))
    results = {}
    for stop in (False, True):
        with LayerStats(layers) as stats:
            out = run_block_for_statistics(blocks[1], hidden, calls.calls[1], stats, stop)
            results[stop] = (out, stats.acc, stats.each_layer_called_once)
    handle.remove()
    (full_out, full, full_once), (stopped_out, early, early_once) = results[False], results[True]
    assert full_out is not None and stopped_out is None and full_once and early_once
    assert len(ran) == 1  # the last layer itself ran only in the full pass
    for lay in layers:
        assert torch.equal(full[lay.name].upper, early[lay.name].upper)
        assert torch.equal(full[lay.name].sum, early[lay.name].sum)
        assert full[lay.name].tokens == early[lay.name].tokens == 36


class _CallsOneLayerTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.first(self.second(self.first(x)))


def test_layer_called_twice_is_reported():
    net = _CallsOneLayerTwice()
    layers = [PrunableLayer(n, n, 0, getattr(net, n)) for n in ("first", "second")]
    with torch.no_grad(), LayerStats(layers) as stats:
        stats.begin_pass(stop_when_complete=False)
        net(torch.randn(5, 4))
        assert not stats.each_layer_called_once
        assert stats.acc["first"].tokens == 10 and stats.acc["second"].tokens == 5
        stats.begin_pass(stop_when_complete=False)
        net.second(torch.randn(5, 4))
        assert not stats.each_layer_called_once  # "first" not called in this pass
