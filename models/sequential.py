"""Sequential whole-model pruning, block by block, with any registered solver.

For each decoder block ``b`` (in order):

1. **Statistics.** The block's layers get forward pre-hooks (:class:`models.capture.LayerStats`)
   and the block is run on its calibration inputs, giving per layer ``G = Σ_t x_t x_tᵀ``
   (float64) and the input mean/variance. All layers of a block are calibrated in the same
   pass (as Wanda does), so e.g. ``o_proj`` sees the dense attention output of block ``b``.
2. **Solve.** Each layer becomes a :class:`~solvers.problem.MaskProblem` with the chosen
   pattern (per-row ``k = round(sparsity·d_in)`` or N:M) and is solved with
   :func:`solvers.solve` (any registered solver or chain, optional warm start). The solver's
   objective and that of the warm start are recorded — when the solver takes no warm start, the
   ``--warm-start`` solver is run on the same problem as a *reference* instead.
3. **Apply.** ``weight *= mask`` (mask-only pruning: SparseGPT's weight update is not applied).
4. **Propagate.** ``propagation="pruned"`` (pruned-so-far, the Wanda/SparseGPT default): the
   inputs of block ``b+1`` are the outputs of the *pruned* block ``b``. ``propagation="dense"``:
   they are the outputs of the dense model.

With pruned propagation the statistics pass needs no block output (the pruned pass computes it),
so it stops as soon as the block's last layer has taken its input (in a Llama block, before the
``down_proj`` product and the residual: a quarter of the multiply-adds of its linear layers). It does so only
after a full pass of block 0 showed every layer called exactly once per forward; the statistics are
those of the full pass, bit for bit.

Two engines compute the block inputs. ``replay`` (default) records each block's call once from
the model's own forward and replays it (:func:`models.capture.run_block`): one capture pass plus
one or two block passes per block. ``forward`` re-runs the model's own forward up to block ``b``
for every block (quadratic in depth, but it never calls a block directly); with dense propagation
its masks are applied only after all blocks were solved. Both give the same statistics.
Memory: one block's statistics at a time, each layer's released as soon as that layer is solved (a 7B
block's are 1.9 GB in float64, 0.97 GB of them ``down_proj``'s 11008² Gram).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from models.baseline_defaults import solver_for_layer
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
from models.layer_problem import consume_into_problem
from models.offload import Placement, materialised, materialised_rest
from solvers.pattern import NM, parse_pattern
from solvers.problem import GramAccumulator
from solvers.reconstruct import weight_update
from solvers.registry import parse_chain, prepare, solve, spec

PROPAGATIONS = ("pruned", "dense")
ENGINES = ("replay", "forward")


@dataclass
class PruneSettings:
    solver: str
    sparsity: float = 0.5
    pattern: str = "per-row"
    warm_start: str | None = None
    propagation: str = "pruned"
    engine: str = "replay"
    seed: int = 0
    time_limit: float | None = None
    solver_settings: dict = field(default_factory=dict)
    batch_size: int = 8
    dsnot_layers: str = "attention"   # DSnoT's released default (models.baseline_defaults); "all": every layer
    reconstruct: bool = False  # refit each row's kept weights after the mask (solvers/reconstruct.py)

    def __post_init__(self) -> None:
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {self.propagation!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        parse_pattern(self.pattern, 1024, self.sparsity)  # validates the pattern text and sparsity
        for name in parse_chain(self.solver) + (parse_chain(self.warm_start) if self.warm_start else ()):
            spec(name)  # unknown names fail now, not after calibration

    @property
    def effective_sparsity(self) -> float:
        p = parse_pattern(self.pattern, 1024, self.sparsity)
        return p.pruned_per_group / p.m if isinstance(p, NM) else self.sparsity


@dataclass
class LayerRecord:
    """Outcome for one layer; objectives are ``f(M)`` in float64 on the calibration Gram."""

    name: str
    kind: str
    block: int
    shape: list[int]
    pattern: str
    status: str
    objective: float | None
    warm_start: str | None
    warm_start_objective: float | None
    warm_start_role: str | None
    solve_seconds: float
    tokens: int
    objective_updated: float | None = None  # f with the written weights (SparseGPT's update or the refit)
    weight_update: str | None = None         # "refit", "sparsegpt" or None (mask only)

    @property
    def reduction(self) -> float | None:
        """``100·(f_warm − f_solver)/f_warm`` in percent (None without a warm start / reference)."""
        ws, obj = self.warm_start_objective, self.objective
        if ws is None or obj is None or ws <= 0:
            return None
        return 100.0 * (ws - obj) / ws

    def to_json(self) -> dict:
        out = asdict(self)
        out["reduction_percent"] = self.reduction
        return out


@dataclass
class PruneReport:
    layers: list[LayerRecord]
    stage_seconds: dict[str, float]
    block_seconds: list[dict[str, float]] = field(default_factory=list)  # per block: stage → seconds


def _solver_takes_warm_start(name: str) -> bool:
    parts = parse_chain(name)
    return len(parts) == 1 and spec(parts[0]).uses_warm_start


def solve_layer(layer: PrunableLayer, acc: GramAccumulator, settings: PruneSettings,
                metadata: dict[str, str]) -> tuple[LayerRecord, torch.Tensor, torch.Tensor | None]:
    """Build the layer's problem, solve it and return ``(record, keep-mask, new weights or None)``;
    no weights change here. New weights (zero where pruned) come from ``settings.reconstruct`` or a
    solver's own update (:func:`solvers.reconstruct.weight_update`), in the layer's dtype."""
    weight = layer.weight().to("cpu", torch.float32).clone()
    pattern = parse_pattern(settings.pattern, weight.shape[1], settings.sparsity)
    meta = dict(metadata, layer=layer.name, layer_type=layer.kind, block=str(layer.block))
    problem = consume_into_problem(acc, weight, pattern, meta)  # acc's storage becomes G: no d_in² temporaries
    solver_name, warm_start = solver_for_layer(settings.solver, settings.warm_start, layer.kind, settings.dsnot_layers)
    if solver_name != settings.solver:  # a layer the baseline leaves to its initial method: that method, default settings
        settings = replace(settings, solver=solver_name, warm_start=warm_start, solver_settings={})
    takes = _solver_takes_warm_start(settings.solver)
    result = solve(settings.solver, problem, warm_start=settings.warm_start if takes else None,
                   time_limit=settings.time_limit, seed=settings.seed, **settings.solver_settings)
    if result.mask is None:
        raise RuntimeError(f"solver {settings.solver!r} returned no mask for {layer.name}: {result.message}")
    ws_label, ws_obj, role = result.warm_start, result.warm_start_objective, "warm start"
    if settings.warm_start and not takes:
        ref = solve(settings.warm_start, problem, seed=settings.seed)
        ws_label, ws_obj, role = settings.warm_start, ref.objective, "reference"
    if ws_label is None:
        role = None
    record = LayerRecord(layer.name, layer.kind, layer.block, list(weight.shape), pattern.describe(),
                         result.status, result.objective, ws_label, ws_obj, role,
                         result.build_seconds + result.solve_seconds, acc.tokens)
    new_weights, record.objective_updated, record.weight_update = weight_update(problem, result, settings.reconstruct)
    if new_weights is not None:
        new_weights = new_weights.to(layer.module.weight.dtype)
    return record, result.mask, new_weights


def apply_layer(layer: PrunableLayer, mask: torch.Tensor, new_weights: torch.Tensor | None) -> None:
    """Zero the pruned weights, or write ``new_weights`` [d_out, d_in] (already zero where pruned)."""
    if new_weights is None:
        layer.apply_mask(mask)
        return
    w = new_weights.T if layer.transposed else new_weights
    with torch.no_grad():
        layer.module.weight.copy_(w.to(layer.module.weight.device))


def prepare_solvers(settings: PruneSettings) -> None:
    """The one-time set-up of the solver chain and of the warm-start / reference chain."""
    prepare(settings.solver)
    if settings.warm_start:
        prepare(settings.warm_start)


def prune_model(model: torch.nn.Module, windows: torch.Tensor, settings: PruneSettings,
                metadata: dict[str, str] | None = None, progress: bool = True,
                placement: Placement | None = None) -> PruneReport:
    """Prune every block of ``model`` in place; ``windows`` are calibration ids [nsamples, seqlen].

    The solvers' one-time set-up (:func:`solvers.registry.prepare`: compiling a kernel) runs first, in
    no stage, so that the stage times do not count it. With a ``placement`` whose ``offload`` is on,
    the model stays where it is stored and each block is materialised on ``placement.device`` in
    ``placement.compute_dtype`` for its statistics, solve and propagation (:mod:`models.offload`;
    replay engine only). ``block_seconds`` in the report gives each block's stage times.
    """
    prepare_solvers(settings)
    metadata = dict(metadata or {}, propagation=settings.propagation)
    offload = placement is not None and placement.offload
    if offload and settings.engine != "replay":
        raise ValueError("block-wise execution (offload) needs the replay engine")
    device = placement.device if offload else next(model.parameters()).device
    batches = [windows[i:i + settings.batch_size].to(device) for i in range(0, len(windows), settings.batch_size)]
    layers = block_layers(model)
    _, blocks = find_blocks(model)
    stages = {"capture": 0.0, "materialise": 0.0, "statistics": 0.0, "solve": 0.0, "propagate": 0.0}
    records: list[LayerRecord] = []
    deferred: list[tuple[PrunableLayer, torch.Tensor, torch.Tensor | None]] = []
    model.eval()

    def solve_block(b: int, accs: dict[str, GramAccumulator]) -> list[tuple[PrunableLayer, torch.Tensor, torch.Tensor | None]]:
        t = time.perf_counter()
        out = []
        for layer in layers[b]:  # each layer's statistics are dropped once it is solved (memory: see below)
            record, mask, new_weights = solve_layer(layer, accs.pop(layer.name), settings, metadata)
            records.append(record)
            out.append((layer, mask, new_weights))
        stages["solve"] += time.perf_counter() - t
        return out

    bar = tqdm(range(len(blocks)), desc=f"pruning ({settings.solver})", unit="block", disable=not progress)
    block_seconds: list[dict[str, float]] = []
    if settings.engine == "replay":
        t = time.perf_counter()
        with _placed_for_capture(model, blocks, placement if offload else None):
            calls = [capture_block_calls(model, batch) for batch in batches]
        hidden = [c.hidden for c in calls]
        stages["capture"] += time.perf_counter() - t
        stop_early = False  # on once a full pass showed each layer called exactly once
        for b in bar:
            before = dict(stages)
            t = time.perf_counter()
            with _placed_block(blocks[b], placement if offload else None):
                stages["materialise"] += time.perf_counter() - t
                t = time.perf_counter()
                with LayerStats(layers[b]) as stats:
                    outputs = []
                    for h, c in zip(hidden, calls):
                        outputs.append(run_block_for_statistics(blocks[b], h, c.calls[b], stats, stop_early))
                        stop_early = settings.propagation == "pruned" and (stop_early or stats.each_layer_called_once)
                stages["statistics"] += time.perf_counter() - t
            # the solve runs with the block as stored: no working copy is held while the solvers need
            # their memory (a 7B block is 0.8 GB in float32); masks and weights go into the stored tensors
            for layer, mask, new_weights in solve_block(b, stats.acc):
                apply_layer(layer, mask, new_weights)
            del stats
            if settings.propagation == "pruned":
                t = time.perf_counter()
                with _placed_block(blocks[b], placement if offload else None):  # the pruned block, materialised again
                    stages["materialise"] += time.perf_counter() - t
                    t = time.perf_counter()
                    outputs = [run_block(blocks[b], h, c.calls[b]) for h, c in zip(hidden, calls)]
                    stages["propagate"] += time.perf_counter() - t
            hidden = outputs
            block_seconds.append({k: stages[k] - before[k] for k in stages})
    else:
        for b in bar:
            before = dict(stages)
            t = time.perf_counter()
            accs = forward_stats_until(model, b, batches, layers[b])
            stages["statistics"] += time.perf_counter() - t
            for layer, mask, new_weights in solve_block(b, accs):
                if settings.propagation == "pruned":
                    apply_layer(layer, mask, new_weights)
                else:
                    deferred.append((layer, mask, new_weights))
            block_seconds.append({k: stages[k] - before[k] for k in stages})
        for layer, mask, new_weights in deferred:
            apply_layer(layer, mask, new_weights)
    return PruneReport(records, stages, block_seconds)


def _placed_for_capture(model: torch.nn.Module, blocks, placement: Placement | None):
    """The model minus its blocks, and block 0 (the capture computes it), on the compute device."""
    if placement is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(materialised_rest(model, placement))
    stack.enter_context(materialised(blocks[0], placement.device, placement.compute_dtype))
    return stack


@contextlib.contextmanager
def _placed_block(block: torch.nn.Module, placement: Placement | None):
    """Block ``b`` on the compute device in the compute precision, for its statistics or its propagation.

    Nothing is written back: between the two the block is back as stored, and the solve writes its
    masks (or new weights, cast once from float64 to the storage precision) into the stored tensors,
    so the propagation computes with exactly the weights the model keeps."""
    if placement is None:
        yield
        return
    with materialised(block, placement.device, placement.compute_dtype):
        yield
