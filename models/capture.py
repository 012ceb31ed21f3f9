"""Find decoder blocks and prunable layers generically; capture per-layer input statistics.

**Blocks.** The decoder blocks are the largest ``nn.ModuleList`` (by parameter count) whose
children all share one class and contain at least one prunable layer — found by structure,
never by attribute names, so GPT-2 (``transformer.h``), OPT (``model.decoder.layers``) and
Llama (``model.layers``) need no special cases. Embeddings and ``lm_head`` sit outside it.

**Prunable layers.** Every ``nn.Linear`` and GPT-2 ``Conv1D`` inside a block. ``Conv1D``
stores ``weight`` as [d_in, d_out]; its mask-problem weight is ``W = weight.T`` [d_out, d_in].

**Statistics.** A forward pre-hook on each layer of the current block feeds its input ``x``
(any leading shape, flattened to tokens) to a :class:`solvers.problem.GramAccumulator`, which
keeps ``G = Σ_t x_t x_tᵀ`` (float64, un-normalised, units of input²) and the per-input mean and
variance.

**Running one block without knowing its signature.** :func:`capture_block_calls` runs the
model's *own* forward once per calibration batch with forward pre-hooks (``with_kwargs``) on
every block: it records the hidden states entering block 0 and, for every block, the exact
positional and keyword arguments the model passed besides the hidden states (attention mask,
position embeddings, …); only block 0 is computed, the others pass their input through, and a
forward hook on the last block then aborts the forward with :class:`StopForward` (``lm_head``
never runs). :func:`run_block` replays a block's recorded
call on new hidden states. Nothing here builds a decoder layer's arguments itself, so it
survives changes of those private signatures across transformers versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from models.errors import ModelStructureError
from solvers.problem import GramAccumulator


class StopForward(Exception):
    """Raised from a hook to end a forward pass early."""


def _conv1d_type():
    try:
        from transformers.pytorch_utils import Conv1D
        return Conv1D
    except ImportError:  # pragma: no cover - transformers always ships it today
        return None


def is_prunable(module: nn.Module) -> bool:
    conv = _conv1d_type()
    return isinstance(module, nn.Linear) or (conv is not None and isinstance(module, conv))


@dataclass
class PrunableLayer:
    """One prunable layer: ``name`` is the full module path, ``kind`` the path inside its block."""

    name: str
    kind: str
    block: int
    module: nn.Module

    @property
    def transposed(self) -> bool:
        return not isinstance(self.module, nn.Linear)

    def weight(self) -> torch.Tensor:
        """``W`` [d_out, d_in] (a detached copy-free view; Conv1D is transposed)."""
        w = self.module.weight.detach()
        return w.T if self.transposed else w

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight().shape)

    def apply_mask(self, mask: torch.Tensor) -> None:
        """``weight *= mask`` in place (mask [d_out, d_in], True = keep)."""
        m = mask.to(self.module.weight.device)
        m = m.T if self.transposed else m
        with torch.no_grad():
            self.module.weight.mul_(m.to(self.module.weight.dtype))


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``(name, ModuleList)`` of the decoder blocks (see module docstring)."""
    best, best_size = None, -1
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if not any(is_prunable(m) for m in module[0].modules()):
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            best, best_size = (name, module), size
    if best is None:
        raise ModelStructureError(f"{type(model).__name__}: found no list of repeated blocks with linear layers")
    return best


def block_layers(model: nn.Module) -> list[list[PrunableLayer]]:
    """Prunable layers per block, in module order."""
    prefix, blocks = find_blocks(model)
    out = []
    for b, block in enumerate(blocks):
        layers = [PrunableLayer(f"{prefix}.{b}.{sub}", sub, b, m)
                  for sub, m in block.named_modules() if sub and is_prunable(m)]
        out.append(layers)
    return out


# ------------------------------------------------------------------ statistics
class LayerStats:
    """Forward pre-hooks accumulating ``G``, mean and variance of the inputs of ``layers``.

    **Shared inputs.** Layers fed the very same tensor (Llama's ``q/k/v_proj`` after the
    input norm, ``gate/up_proj`` after the post-attention norm) would each run the same
    float64 ``xᵀx``. Instead, a layer whose accumulator is in exactly the state that another
    accumulator was in *before* that one consumed this tensor copies the other's new state
    (``d_in²`` copies instead of a ``tokens × d_in²`` product). "The same state" is tracked by
    histories of consumption events (a fresh id per real accumulation, copied along with the
    state), and "this tensor" by object identity plus its in-place version counter, with a
    reference held so that its memory cannot be reused meanwhile. The copy is of the result of
    the identical computation on identical inputs, so the statistics are bit-identical to
    accumulating every layer separately (checked in ``tests/models/test_layer_stats_sharing.py``).

    **Stopping early.** The hooks count each layer's calls per pass (:meth:`begin_pass`); with
    ``stop_when_complete`` the pre-hook of the last layer to take its input ends the forward
    (:func:`run_block_for_statistics`), when the block's output is not needed.
    """

    def __init__(self, layers: list[PrunableLayer], device: torch.device | str | None = None):
        self.layers = layers
        self.acc = {}
        self._handles = []
        self._history: dict[str, tuple[int, ...]] = {}
        self._last_input: dict[str, tuple[torch.Tensor, int]] = {}
        self._events = 0
        self.shared_updates = 0
        self.stop_when_complete = False
        self._calls_this_pass: dict[str, int] = {}
        for layer in layers:
            d_in = layer.shape[1]
            acc = GramAccumulator(d_in, device=device or layer.module.weight.device)
            self.acc[layer.name] = acc
            self._history[layer.name] = ()
            self._handles.append(layer.module.register_forward_pre_hook(self._hook(layer.name)))

    def _hook(self, name: str):
        def hook(module, args):
            self._consume(name, args[0])
            self._calls_this_pass[name] = self._calls_this_pass.get(name, 0) + 1
            if self.stop_when_complete and len(self._calls_this_pass) == len(self.layers):
                raise StopForward
        return hook

    def begin_pass(self, stop_when_complete: bool) -> None:
        """Start counting one forward's layer calls; with ``stop_when_complete`` the forward ends
        (:class:`StopForward` from the pre-hook) as soon as every layer has taken its input."""
        self.stop_when_complete = stop_when_complete
        self._calls_this_pass = {}

    @property
    def each_layer_called_once(self) -> bool:
        """Whether the pass since :meth:`begin_pass` called every layer exactly once."""
        return (len(self._calls_this_pass) == len(self.layers)
                and all(n == 1 for n in self._calls_this_pass.values()))

    def _consume(self, name: str, x: torch.Tensor) -> None:
        mine = self._history[name]
        for other, history in self._history.items():
            last = self._last_input.get(other)
            if (other != name and history[:-1] == mine and len(history) == len(mine) + 1
                    and last is not None and last[0] is x and last[1] == x._version):
                self.acc[name].copy_from(self.acc[other])
                self._history[name] = history
                self._last_input[name] = last
                self.shared_updates += 1
                return
        self.acc[name].update(x)
        self._events += 1
        self._history[name] = mine + (self._events,)
        self._last_input[name] = (x, x._version)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._last_input.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


# ------------------------------------------------------------- block replays
@dataclass
class BlockCall:
    """What the model passed to one block besides the hidden states."""

    args: tuple
    kwargs: dict
    hidden_as_kwarg: bool


@dataclass
class BatchCalls:
    """For one calibration batch: block-0 input and every block's recorded call."""

    hidden: torch.Tensor
    calls: list[BlockCall] = field(default_factory=list)
    pass_through: _PassThrough | None = None  # a stand-in block returning its input, shaped as block 0's output


def _split_hidden(args: tuple, kwargs: dict) -> tuple[torch.Tensor, BlockCall]:
    if args:
        return args[0], BlockCall(tuple(args[1:]), dict(kwargs), False)
    if "hidden_states" not in kwargs:
        raise ModelStructureError("a decoder block was called without positional args or hidden_states=")
    rest = {k: v for k, v in kwargs.items() if k != "hidden_states"}
    return kwargs["hidden_states"], BlockCall((), rest, True)


@torch.no_grad()
def model_forward(model: nn.Module, input_ids: torch.Tensor) -> None:
    """The model's own forward on ``input_ids``; a :class:`StopForward` from a hook ends it."""
    try:
        model(input_ids=input_ids, use_cache=False)
    except StopForward:
        pass


class _PassThrough:
    """A stand-in ``forward`` that returns the hidden states it is given, shaped as block 0's output.

    Block 0's real output fixes the structure (a tensor, or a tuple whose first element is the
    hidden states); the stand-in returns the incoming hidden states in its place.
    """

    def __init__(self, first_output):
        # only the structure is kept (not block 0's hidden states, which would pin one batch's activations)
        self.is_tensor = isinstance(first_output, torch.Tensor)
        self.kind = type(first_output)
        self.tail = () if self.is_tensor else tuple(first_output[1:])

    def __call__(self, *args, **kwargs):
        hidden, _ = _split_hidden(args, kwargs)
        if self.is_tensor:
            return hidden
        return self.kind((hidden, *self.tail))


def instance_forwards(blocks) -> list:
    """Each block's instance-level ``forward`` (None where the class's own is used), to put back later."""
    return [blk.__dict__.get("forward") for blk in blocks]


def restore_forwards(blocks, saved: list) -> None:
    """Undo stand-in ``forward`` methods: each block gets back what :func:`instance_forwards` saw."""
    for blk, forward in zip(blocks, saved):
        if forward is None:
            blk.__dict__.pop("forward", None)
        else:
            blk.forward = forward


@torch.no_grad()
def capture_block_calls(model: nn.Module, batch: torch.Tensor) -> BatchCalls:
    """Run the model on ``batch`` and record block-0 hidden states and every block's call.

    Only block 0 is computed (unless its output is neither a tensor nor a tuple / list starting with
    one; then all are): blocks 1, 2, … are passed through (their ``forward`` temporarily
    returns its input hidden states), because what the model passes a block besides the hidden
    states (masks, position embeddings, caches) is built before the loop over blocks and does not
    depend on what earlier blocks computed. This saves a full dense forward of the model per
    calibration batch (8.5–10 s of a SmolLM2-135M prune at 16 × 256 tokens on 2 cores); ``tests/models/test_capture.py``
    checks that the recorded calls equal those of the model's full forward.
    """
    _, blocks = find_blocks(model)
    record = BatchCalls(hidden=None)  # type: ignore[arg-type]
    saved = instance_forwards(blocks)

    def pre(index):
        def hook(module, args, kwargs):
            hidden, call = _split_hidden(args, kwargs)
            if index == 0:
                record.hidden = hidden.detach()
            record.calls.append(call)
        return hook

    def pass_rest_through(module, args, output):
        passable = isinstance(output, torch.Tensor) or (
            isinstance(output, (tuple, list)) and len(output) > 0 and isinstance(output[0], torch.Tensor))
        if passable:  # any other output structure: the later blocks are computed
            stand_in = _PassThrough(output)
            record.pass_through = stand_in
            for blk in blocks[1:]:
                blk.forward = stand_in

    def stop(module, args, output):
        raise StopForward

    handles = [blk.register_forward_pre_hook(pre(i), with_kwargs=True) for i, blk in enumerate(blocks)]
    handles.append(blocks[0].register_forward_hook(pass_rest_through))
    handles.append(blocks[len(blocks) - 1].register_forward_hook(stop))
    try:
        model_forward(model, batch)
    finally:
        for h in handles:
            h.remove()
        restore_forwards(blocks, saved)
    if len(record.calls) != len(blocks):
        raise ModelStructureError(f"the forward called {len(record.calls)} of {len(blocks)} blocks")
    return record


@torch.no_grad()
def run_block(block: nn.Module, hidden: torch.Tensor, call: BlockCall) -> torch.Tensor:
    """Replay a recorded block call on ``hidden``; returns the block's output hidden states."""
    if call.hidden_as_kwarg:
        out = block(*call.args, hidden_states=hidden, **call.kwargs)
    else:
        out = block(hidden, *call.args, **call.kwargs)
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def run_block_for_statistics(block: nn.Module, hidden: torch.Tensor, call: BlockCall, stats: LayerStats,
                             stop_when_complete: bool) -> torch.Tensor | None:
    """Replay ``block`` on ``hidden`` for ``stats``; returns its output, or None when stopped early.

    With ``stop_when_complete`` the block stops once its last layer has taken its input, so the
    rest (in a Llama block the ``down_proj`` product and the residual) is not computed; the
    statistics are those of the full pass. Only valid for blocks that call every layer exactly once
    per forward (a layer called again after the last new one would miss its second input): the
    caller checks :attr:`LayerStats.each_layer_called_once` on a full pass first.
    """
    stats.begin_pass(stop_when_complete)
    try:
        return run_block(block, hidden, call)
    except StopForward:
        return None


@torch.no_grad()
def forward_stats_until(model: nn.Module, block_index: int, batches: list[torch.Tensor],
                        layers: list[PrunableLayer]) -> dict[str, GramAccumulator]:
    """Statistics of ``layers`` from the model's own forward, stopped after block ``block_index``."""
    _, blocks = find_blocks(model)

    def stop(module, args, output):
        raise StopForward

    handle = blocks[block_index].register_forward_hook(stop)
    try:
        with LayerStats(layers) as stats:
            for batch in batches:
                model_forward(model, batch)
    finally:
        handle.remove()
    return stats.acc
