"""LayerStats reuses the statistics of layers fed the same tensor, bit-identically."""

from __future__ import annotations

import torch
from torch import nn

from models.capture import LayerStats, PrunableLayer, block_layers, capture_block_calls, find_blocks, run_block

SHARED_PER_CALL = {"gpt2": 0, "opt": 2, "llama": 3}  # copies per call: OPT q/k/v; Llama q/k/v + gate/up


def _stats(model, layers, batches, one_layer_each: bool):
    """Statistics of ``layers`` over ``batches`` replayed through block 0."""
    _, blocks = find_blocks(model)
    recorded = [capture_block_calls(model, b) for b in batches]
    groups = [[lay] for lay in layers] if one_layer_each else [layers]
    accs, shared = {}, 0
    for group in groups:
        with LayerStats(group) as stats:
            for calls in recorded:
                run_block(blocks[0], calls.hidden, calls.calls[0])
        accs.update(stats.acc)
        shared += stats.shared_updates
    return accs, shared


def test_shared_inputs_give_identical_statistics(arch, tiny_model, random_windows):
    model = tiny_model(arch)
    ids = random_windows(6, 16)
    layers = block_layers(model)[0]
    batches = [ids[:2], ids[2:4], ids[4:]]
    together, shared = _stats(model, layers, batches, one_layer_each=False)
    separate, none = _stats(model, layers, batches, one_layer_each=True)
    assert none == 0 and shared == SHARED_PER_CALL[arch] * len(batches)
    for lay in layers:
        a, b = together[lay.name], separate[lay.name]
        assert a is not b and a.tokens == b.tokens == 6 * 16
        assert torch.equal(a.gram, b.gram) and torch.equal(a.sum, b.sum) and torch.equal(a.upper, b.upper)


class _InPlaceBetween(nn.Module):
    """Two linear layers fed the same tensor object, changed in place in between."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        y = self.first(x)
        x.mul_(2.0)
        return y + self.second(x)


def test_in_place_change_is_not_mistaken_for_a_shared_input():
    net = _InPlaceBetween()
    layers = [PrunableLayer("first", "first", 0, net.first), PrunableLayer("second", "second", 0, net.second)]
    x = torch.randn(5, 4)
    with torch.no_grad(), LayerStats(layers) as stats:
        net(x.clone())
    assert stats.shared_updates == 0
    x64 = x.double()
    torch.testing.assert_close(stats.acc["first"].gram, x64.T @ x64, rtol=1e-12, atol=0.0)
    torch.testing.assert_close(stats.acc["second"].gram, 4.0 * (x64.T @ x64), rtol=1e-12, atol=0.0)
