"""Fixtures of tests/models: reference layer inputs recorded by plain forward hooks."""

from __future__ import annotations

import pytest
import torch


def reference_inputs(model, layers, ids) -> dict[str, torch.Tensor]:
    """Inputs X [tokens, d_in] of ``layers`` recorded by plain hooks during the model's forward."""
    seen: dict[str, list[torch.Tensor]] = {lay.name: [] for lay in layers}
    handles = [lay.module.register_forward_pre_hook(
        lambda mod, args, name=lay.name: seen[name].append(args[0].detach().reshape(-1, args[0].shape[-1])))
        for lay in layers]
    with torch.no_grad():
        model(input_ids=ids, use_cache=False)
    for h in handles:
        h.remove()
    return {k: torch.cat(v).double() for k, v in seen.items()}


@pytest.fixture(name="reference_inputs")
def reference_inputs_fixture():
    """:func:`reference_inputs`, the independent check of the statistics capture."""
    return reference_inputs
