"""Perplexity = exp(mean next-token NLL) over non-overlapping held-out windows."""

from __future__ import annotations

import math

import pytest
import torch

from models.perplexity import perplexity


def test_perplexity_is_exp_mean_nll_by_hand(arch, tiny_model):
    model = tiny_model(arch)
    held = torch.randint(3, 300, (5 * 12 + 7,), generator=torch.Generator().manual_seed(1))
    res = perplexity(model, held, seqlen=12, batch_size=2, progress=False)
    nll = []
    with torch.no_grad():
        for w in range(5):
            ids = held[w * 12:(w + 1) * 12]
            logp = torch.log_softmax(model(input_ids=ids[None]).logits[0].double(), dim=-1)
            nll += [-float(logp[i, ids[i + 1]]) for i in range(11)]
    assert res.windows == 5 and res.tokens == 55 == len(nll)
    assert res.mean_nll == pytest.approx(sum(nll) / len(nll), rel=1e-5)
    assert res.ppl == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)
