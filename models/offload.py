"""Block-wise execution: the model stays on the CPU, one decoder block at a time computes on the device.

This is how SparseGPT and Wanda prune 65B/70B models on one GPU. The model is stored on the CPU in
its storage precision (:mod:`models.precision`). For a block's statistics, and again for its
propagation, the block is **materialised** on the compute device in the compute precision
(:func:`materialised`); in between, while its layers are solved, it is back as stored and the masks
(or new weights) are written straight into the stored tensors. The embeddings, final norm and head
(the model minus its blocks) are materialised the same way for the calibration capture and for the
logits of the perplexity evaluation. Peak memory:

    model (storage precision, CPU)
    + the calibration hidden states (device)        -- nsamples · seqlen · hidden · 4 bytes
    + either one block in the compute precision     -- statistics and propagation; a 7B Llama block: 202 M parameters
      and one block's float64 statistics            -- Σ_layers d_in² · 8 bytes (shared inputs copied)
    + or, while a layer is solved, that layer's problem and its solver's memory (no block copy)

and no second copy of the weights. With the device being the CPU this is still the same code path
(the "move" is then only the precision change, or nothing), which is how the tests check it against
the whole-model path.

``offload="auto"`` turns block-wise execution on when the compute precision differs from the
storage precision (half precision on a CPU) or when the model does not fit in 90 % of the CUDA
device's free memory.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from models.calibration import eval_windows
from models.capture import capture_block_calls, find_blocks, instance_forwards, restore_forwards, run_block
from models.errors import ModelLoadError
from models.perplexity import Perplexity, window_nll_sum
from models.precision import compute_dtype, dtype_name

OFFLOAD_CHOICES = ("auto", "on", "off")
FIT_FRACTION = 0.9


@dataclass(frozen=True)
class Placement:
    """Where blocks compute and in which precision; ``offload`` = block by block from the CPU."""

    device: torch.device
    storage_dtype: torch.dtype
    compute_dtype: torch.dtype
    offload: bool

    def metadata(self) -> dict[str, str]:
        return {"dtype": dtype_name(self.storage_dtype), "compute_dtype": dtype_name(self.compute_dtype),
                "offload": str(self.offload).lower(), "device": str(self.device)}


def parse_offload(text: str | bool | None) -> str:
    """Validate an ``--offload`` value (None → ``"auto"``; booleans → on / off)."""
    if text is None:
        return "auto"
    if isinstance(text, bool):
        return "on" if text else "off"
    name = str(text).lower()
    if name not in OFFLOAD_CHOICES:
        raise ModelLoadError(f"offload must be one of {', '.join(OFFLOAD_CHOICES)}, got {text!r}")
    return name


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's distinct parameters and buffers."""
    seen, total = set(), 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def decide_placement(requested: str, device: torch.device, storage: torch.dtype, size_bytes: int) -> Placement:
    """The :class:`Placement` for ``--offload requested`` (see module docstring for ``auto``)."""
    requested = parse_offload(requested)
    compute = compute_dtype(storage, device)
    if requested == "off":
        return Placement(device, storage, storage, False)  # as asked: the whole model computes as stored
    if requested == "on":
        return Placement(device, storage, compute, True)
    if compute != storage:
        return Placement(device, storage, compute, True)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return Placement(device, storage, compute, size_bytes > FIT_FRACTION * free)
    return Placement(device, storage, compute, False)


def _swap_buffer(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    module._buffers[name] = tensor


@contextlib.contextmanager
def materialised(module: nn.Module, device: torch.device, dtype: torch.dtype, skip: nn.Module | None = None):
    """Let ``module`` (without the sub-module ``skip``) compute on ``device`` in ``dtype`` for a while.

    Floating-point parameters get a working copy in ``dtype`` on ``device`` (none when they already
    are there, in that precision); buffers only move. On exit the stored tensors are put back; nothing
    is copied back (masks reach the model by being written into the stored tensors while the block is
    not materialised, :mod:`models.sequential`). Tied parameters are one ``Parameter`` and are handled once.
    """
    skipped = set() if skip is None else {id(p) for p in skip.parameters()} | {id(b) for b in skip.buffers()}
    params: list[tuple[nn.Parameter, torch.Tensor]] = []
    buffers: list[tuple[nn.Module, str, torch.Tensor]] = []
    for p in module.parameters():
        if id(p) in skipped:
            continue
        target = dtype if p.is_floating_point() else p.dtype
        if p.device != device or p.dtype != target:
            params.append((p, p.data))
            p.data = p.data.to(device, target)
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None and id(buf) not in skipped and buf.device != device:
                buffers.append((sub, name, buf))
                _swap_buffer(sub, name, buf.to(device))
    try:
        yield module
    finally:
        for p, stored in params:
            p.data = stored
        for sub, name, buf in buffers:
            _swap_buffer(sub, name, buf)


def materialised_rest(model: nn.Module, placement: Placement):
    """The model minus its decoder blocks (embeddings, final norm, head) on the compute device."""
    _, blocks = find_blocks(model)
    return materialised(model, placement.device, placement.compute_dtype, skip=blocks)


@torch.no_grad()
def head_logits(model: nn.Module, ids: torch.Tensor, final_hidden: torch.Tensor, stand_in) -> torch.Tensor:
    """The model's logits when its blocks' output is ``final_hidden``: the model's own forward with
    every block replaced by ``stand_in`` (returns its input) and block 0's input replaced by
    ``final_hidden``, so the final norm and head run exactly as in the model's forward."""
    _, blocks = find_blocks(model)
    saved = instance_forwards(blocks)

    def inject(module, args, kwargs):
        if args:
            return (final_hidden, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": final_hidden}

    handle = blocks[0].register_forward_pre_hook(inject, with_kwargs=True)
    try:
        for blk in blocks:
            blk.forward = stand_in
        return model(input_ids=ids, use_cache=False).logits
    finally:
        handle.remove()
        restore_forwards(blocks, saved)


@torch.no_grad()
def blockwise_perplexity(model: nn.Module, held_out: torch.Tensor, seqlen: int, placement: Placement,
                         batch_size: int = 4, max_windows: int | None = None, progress: bool = True) -> Perplexity:
    """:func:`models.perplexity.perplexity`, computed block by block (same windows, same formula).

    All held-out windows go through block ``b`` before block ``b + 1`` is materialised; their hidden
    states (windows · seqlen · hidden · compute bytes) stay on the device meanwhile.
    """
    windows = eval_windows(held_out, seqlen, max_windows)
    _, blocks = find_blocks(model)
    batches = [windows[i:i + batch_size].to(placement.device) for i in range(0, len(windows), batch_size)]
    model.eval()
    with materialised_rest(model, placement), materialised(blocks[0], placement.device, placement.compute_dtype):
        calls = [capture_block_calls(model, ids) for ids in batches]
    hidden = [c.hidden for c in calls]
    for b in tqdm(range(len(blocks)), desc="perplexity", unit="block", disable=not progress):
        with materialised(blocks[b], placement.device, placement.compute_dtype):
            hidden = [run_block(blocks[b], h, c.calls[b]) for h, c in zip(hidden, calls)]
    total = 0.0
    with materialised_rest(model, placement):
        for ids, h, c in zip(batches, hidden, calls):
            if c.pass_through is None:
                raise ModelLoadError(f"{type(blocks[0]).__name__} returns neither a tensor nor a tuple starting "
                                     "with one; block-wise evaluation cannot stand in for it (use --offload off)")
            logits = head_logits(model, ids, h, c.pass_through)
            total += float(window_nll_sum(logits, ids).sum())
    tokens = len(windows) * (seqlen - 1)
    mean = total / tokens
    return Perplexity(math.exp(mean), mean, tokens, len(windows), seqlen)

