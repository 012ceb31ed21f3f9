"""Sequential pruning of tiny models: exact patterns, propagation modes, solvers, statistics."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models import sequential
from models.capture import LayerStats, block_layers
from models.sequential import PruneSettings, prune_model
from solvers import objective, registration, solve
from solvers.pattern import PerRow
from solvers.problem import MaskProblem
from solvers.registry import spec


@pytest.fixture
def windows(random_windows) -> torch.Tensor:
    """Six seeded 16-token calibration windows."""
    return random_windows(6, 16)


@pytest.mark.parametrize("solver", ["wanda", "magnitude", "sparsegpt"])
def test_per_row_sparsity_is_exact(arch, solver, tiny_model, windows):
    model = tiny_model(arch)
    report = prune_model(model, windows, PruneSettings(solver, sparsity=0.6), progress=False)
    assert len(report.layers) == sum(len(b) for b in block_layers(model))
    for blk in block_layers(model):
        for lay in blk:
            w = lay.weight()
            k = round(0.6 * w.shape[1])
            assert ((w == 0).sum(dim=1) == k).all(), lay.name
    assert all(r.objective is not None and r.objective > 0 and r.status in ("optimal", "feasible")
               for r in report.layers)


def test_two_four_pattern_is_exact(arch, tiny_model, windows):
    model = tiny_model(arch)
    report = prune_model(model, windows, PruneSettings("wanda", pattern="2:4"), progress=False)
    assert {r.pattern for r in report.layers} == {"2:4"}
    for blk in block_layers(model):
        for lay in blk:
            w = lay.weight()
            zeros = (w == 0).reshape(w.shape[0], -1, 4).sum(dim=2)
            assert (zeros == 2).all(), lay.name


def test_propagation_modes_work_differ_and_engines_agree(arch, tiny_model, windows):
    results = {}
    for engine in ("replay", "forward"):
        for prop in ("pruned", "dense"):
            model = tiny_model(arch)
            report = prune_model(model, windows, PruneSettings("wanda", propagation=prop, engine=engine),
                                 progress=False)
            results[engine, prop] = ([r.objective for r in report.layers], [r.block for r in report.layers],
                                     [lay.weight().clone() for blk in block_layers(model) for lay in blk])
    for prop in ("pruned", "dense"):
        torch.testing.assert_close(torch.tensor(results["replay", prop][0]),
                                   torch.tensor(results["forward", prop][0]), rtol=1e-6, atol=0)
    pruned, dense = results["replay", "pruned"], results["replay", "dense"]
    blocks = torch.tensor(pruned[1])
    obj_p, obj_d = torch.tensor(pruned[0]), torch.tensor(dense[0])
    # block 0 sees the same embeddings either way; block 1 sees pruned vs dense block-0 outputs
    torch.testing.assert_close(obj_p[blocks == 0], obj_d[blocks == 0])
    assert not torch.allclose(obj_p[blocks == 1], obj_d[blocks == 1], rtol=1e-6, atol=0)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_recorded_objective_matches_statistics_of_manual_forward(arch, tiny_model, windows, reference_inputs):
    """Dense propagation: every layer's recorded f(M) equals f on XᵀX from a plain hooked forward."""
    dense_model = tiny_model(arch)
    layers = [lay for blk in block_layers(dense_model) for lay in blk]
    x_ref = reference_inputs(dense_model, layers, windows)
    model = tiny_model(arch)
    report = prune_model(model, windows, PruneSettings("wanda", propagation="dense"), progress=False)
    for rec, lay in zip(report.layers, layers):
        problem = MaskProblem.from_activations(lay.weight().clone(), x_ref[lay.name],
                                               PerRow(round(0.5 * lay.shape[1])))
        ref = solve("wanda", problem)
        assert rec.objective == pytest.approx(ref.objective, rel=1e-6)
        assert rec.objective == pytest.approx(objective(problem, ref.mask), rel=1e-6)


def test_warm_start_reference_and_metadata(tiny_model, windows):
    model = tiny_model("llama")
    report = prune_model(model, windows, PruneSettings("sparsegpt", warm_start="wanda"),
                         {"model": "tiny", "nsamples": "6"}, progress=False)
    for rec in report.layers:
        assert rec.warm_start == "wanda" and rec.warm_start_role == "reference"
        assert rec.warm_start_objective > 0 and rec.reduction is not None
        assert rec.tokens == windows.numel()
    assert set(report.stage_seconds) >= {"capture", "statistics", "solve", "propagate"}


def test_bad_settings_fail_early():
    with pytest.raises(ValueError, match="propagation"):
        PruneSettings("wanda", propagation="sideways")
    with pytest.raises(KeyError, match="unknown solver"):
        PruneSettings("no-such-solver")
    with pytest.raises(ValueError, match="outside"):
        PruneSettings("wanda", sparsity=1.5)


def test_solver_set_up_runs_once_before_any_stage(tiny_model, windows, monkeypatch):
    """A solver's one-time set-up (compiling a kernel) runs before the first stage, so no stage counts it."""
    events = []
    for name in ("wanda", "magnitude"):
        base = spec(name)  # also imports the built-in solvers
        monkeypatch.setitem(registration.SOLVERS, name, dataclasses.replace(
            base, function=_recording(base.function, events, ("solve", name)),
            prepare=_recording(lambda: None, events, ("prepare", name))))
    monkeypatch.setattr(sequential, "capture_block_calls",
                        _recording(sequential.capture_block_calls, events, ("capture", None)))
    prune_model(tiny_model("llama"), windows, PruneSettings("wanda", warm_start="magnitude"), progress=False)
    assert events[:3] == [("prepare", "wanda"), ("prepare", "magnitude"), ("capture", None)]
    assert {("solve", "wanda"), ("solve", "magnitude")} <= set(events)
    assert events.count(("prepare", "wanda")) == events.count(("prepare", "magnitude")) == 1


@pytest.mark.parametrize("propagation", ["pruned", "dense"])
def test_statistics_pass_stops_early_only_where_outputs_are_not_needed(arch, tiny_model, windows, propagation,
                                                                       monkeypatch):
    """Pruned propagation: each block's last layer runs in the propagation passes and in block 0's first
    statistics pass only (besides the capture's block-0 passes), with the objectives and masks of full
    statistics passes."""
    settings = PruneSettings("wanda+swap", propagation=propagation, batch_size=2)  # three batches
    outcomes = {}
    for early in (True, False):
        if not early:
            monkeypatch.setattr(LayerStats, "each_layer_called_once", property(lambda self: False))
        model = tiny_model(arch)
        lasts = [blk[-1].module for blk in block_layers(model)]
        ran = []
        for b, module in enumerate(lasts):
            module.register_forward_hook(lambda *_, b=b, ran=ran: ran.append(b))
        report = prune_model(model, windows, settings, progress=False)
        weights = [lay.weight().clone() for blk in block_layers(model) for lay in blk]
        outcomes[early] = ([r.objective for r in report.layers], weights, ran)
    (objectives, weights, ran), (full_objectives, full_weights, full_ran) = outcomes[True], outcomes[False]
    assert objectives == full_objectives
    assert all(torch.equal(a, b) for a, b in zip(weights, full_weights))
    # per batch: the capture computes block 0, each block's statistics pass, its pruned propagation pass
    passes = 2 if propagation == "pruned" else 1
    assert full_ran.count(0) == 3 + 3 * passes and full_ran.count(1) == 3 * passes
    if propagation == "pruned":
        assert ran.count(0) == 3 + 1 + 3 and ran.count(1) == 3
    else:
        assert ran == full_ran


def _recording(fn, events: list, event: tuple):
    """``fn`` that first appends ``event`` to ``events``."""
    def wrapper(*args, **kwargs):
        events.append(event)
        return fn(*args, **kwargs)
    return wrapper


@pytest.mark.parametrize("settings", [PruneSettings("sparsegpt", solver_settings={"update_weights": True}),
                                      PruneSettings("wanda", reconstruct=True)])
def test_weight_updates_are_written_and_propagated(settings, tiny_model, windows):
    """The written weights are the update's (zero exactly where pruned), the loss with them is below the mask's,
    and block 1's statistics see them (so its objectives differ from a mask-only run)."""
    model = tiny_model("llama")
    report = prune_model(model, windows, settings, progress=False)
    mask_only = prune_model(tiny_model("llama"), windows, dataclasses.replace(
        settings, solver_settings={}, reconstruct=False), progress=False)
    label = "refit" if settings.reconstruct else "sparsegpt"
    for rec, plain in zip(report.layers, mask_only.layers):
        assert rec.weight_update == label
        assert rec.objective_updated < rec.objective
        if rec.block == 0:
            assert rec.objective == pytest.approx(plain.objective, rel=1e-9)
    assert any(rec.objective != pytest.approx(plain.objective, rel=1e-6)
               for rec, plain in zip(report.layers, mask_only.layers) if rec.block == 1)
    dense = tiny_model("llama")
    for blk, dense_blk in zip(block_layers(model), block_layers(dense)):
        for lay, dense_lay in zip(blk, dense_blk):
            w, w0 = lay.weight(), dense_lay.weight()
            assert ((w == 0).sum(dim=1) == w.shape[1] // 2).all()
            assert not torch.equal(w[w != 0], w0[w != 0])                  # kept weights changed
