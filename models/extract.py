"""Turn real layers into instance files: full layers and seeded crops, with provenance.

Statistics are those of the **dense** model (no layer is pruned; every block sees the dense
outputs of the blocks before it). For each layer whose full name matches one of the glob
patterns (``fnmatch``, e.g. ``"*.0.mlp.*"``), the writer stores

* the full-layer instance ``W`` [d_out, d_in], ``G`` [d_in, d_in] (float64), input mean/var;
* ``crops`` sub-instances of ``r`` rows × ``d`` input columns with the matching Gram
  sub-block ``G[cols][:, cols]``. **Crop rule:** a ``torch.Generator`` seeded with
  ``seed·1_000_003 + crc32(layer name) + i`` (crop ``i``) draws ``r`` distinct rows and, for
  per-row patterns, ``d`` distinct columns uniformly without replacement (both sorted); for N:M
  it draws ``d/m`` whole column groups so the crop keeps the group structure. A crop's per-row
  pattern prunes ``round(sparsity·d)``.

Files go to ``OUT/<layer>.safetensors`` and ``OUT/<layer>.crop<i>.safetensors`` in the
instance-file format (:mod:`solvers.instance_io`); ``OUT/manifest.json`` lists them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from models.capture import LayerStats, block_layers, capture_block_calls, find_blocks, run_block
from models.offload import Placement, materialised, materialised_rest
from models.save_model import atomic_text
from solvers.instance_io import save_instance
from solvers.pattern import NM, Pattern, PerRow, parse_pattern, per_row_k
from solvers.problem import MaskProblem


@dataclass
class ExtractSettings:
    layers: list[str]
    sparsity: float = 0.5
    pattern: str = "per-row"
    crops: int = 2
    crop_rows: int = 8
    crop_cols: int = 32
    seed: int = 0
    full: bool = True
    batch_size: int = 8


def crop_indices(d_out: int, d_in: int, rows: int, cols: int, pattern: Pattern,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``(rows, cols)`` index vectors, sorted (see module docstring)."""
    if not (1 <= rows <= d_out and 1 <= cols <= d_in):
        raise ValueError(f"crop {rows}x{cols} does not fit a {d_out}x{d_in} layer")
    r = torch.randperm(d_out, generator=generator)[:rows].sort().values
    if isinstance(pattern, NM):
        if cols % pattern.m:
            raise ValueError(f"crop columns {cols} must be a multiple of M={pattern.m} for {pattern.describe()}")
        groups = torch.randperm(d_in // pattern.m, generator=generator)[:cols // pattern.m].sort().values
        c = (groups[:, None] * pattern.m + torch.arange(pattern.m)[None, :]).reshape(-1)
    else:
        c = torch.randperm(d_in, generator=generator)[:cols].sort().values
    return r, c


def crops_of(problem: MaskProblem, settings: ExtractSettings, base: Pattern) -> list[MaskProblem]:
    layer = problem.metadata.get("layer", "")
    parent = problem.instance_id()
    out = []
    for i in range(settings.crops):
        seed = settings.seed * 1_000_003 + zlib.crc32(layer.encode()) + i
        gen = torch.Generator().manual_seed(seed)
        rows, cols = crop_indices(problem.d_out, problem.d_in, settings.crop_rows, settings.crop_cols, base, gen)
        pattern = base if isinstance(base, NM) else PerRow(per_row_k(len(cols), settings.sparsity))
        sub = problem.crop(rows, cols, pattern)
        sub.metadata.update(crop=str(i), crop_seed=str(seed), parent_instance_id=parent,
                            crop_rows=",".join(map(str, rows.tolist())),
                            crop_cols=",".join(map(str, cols.tolist())),
                            crop_rule="uniform rows; uniform cols (N:M: whole groups); torch.Generator")
        out.append(sub)
    return out


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


@torch.no_grad()
def extract_instances(model: torch.nn.Module, windows: torch.Tensor, settings: ExtractSettings,
                      out_dir: str | Path, metadata: dict[str, str] | None = None,
                      progress: bool = True, placement: Placement | None = None) -> list[dict]:
    """Write instance files for matching layers; returns the manifest entries.

    With a ``placement`` whose ``offload`` is on, each block computes on the placement's device in its
    compute precision, one at a time (:mod:`models.offload`)."""
    metadata = dict(metadata or {}, propagation="dense", statistics="dense model")
    out_dir = Path(out_dir)
    layers = block_layers(model)
    chosen = [[lay for lay in blk if any(fnmatch.fnmatchcase(lay.name, p) for p in settings.layers)]
              for blk in layers]
    wanted = [b for b, blk in enumerate(chosen) if blk]
    if not wanted:
        names = ", ".join(lay.name for lay in layers[0][:4])
        raise ValueError(f"no layer matches {settings.layers}; layer names look like: {names}, …")
    _, blocks = find_blocks(model)
    offload = placement is not None and placement.offload
    device = placement.device if offload else next(model.parameters()).device
    batches = [windows[i:i + settings.batch_size].to(device) for i in range(0, len(windows), settings.batch_size)]
    with contextlib.ExitStack() as stack:
        if offload:
            stack.enter_context(materialised_rest(model, placement))
            stack.enter_context(materialised(blocks[0], device, placement.compute_dtype))
        calls = [capture_block_calls(model, batch) for batch in batches]
    hidden = [c.hidden for c in calls]
    manifest: list[dict] = []
    for b in tqdm(range(wanted[-1] + 1), desc="extracting", unit="block", disable=not progress):
        with contextlib.ExitStack() as stack:
            if offload:
                stack.enter_context(materialised(blocks[b], device, placement.compute_dtype))
            with LayerStats(chosen[b]) as stats:
                hidden = [run_block(blocks[b], h, c.calls[b]) for h, c in zip(hidden, calls)]
        for layer in chosen[b]:
            weight = layer.weight().to("cpu", torch.float32).clone()
            pattern = parse_pattern(settings.pattern, weight.shape[1], settings.sparsity)
            meta = dict(metadata, layer=layer.name, layer_type=layer.kind, block=str(b))
            problem = stats.acc[layer.name].problem(weight, pattern, metadata=meta)
            items = ([("full", problem)] if settings.full else []) + \
                [(f"crop{i}", p) for i, p in enumerate(crops_of(problem, settings, pattern))]
            for tag, p in items:
                path = out_dir / (f"{_safe(layer.name)}.safetensors" if tag == "full"
                                  else f"{_safe(layer.name)}.{tag}.safetensors")
                iid = save_instance(p, path.resolve())  # through a link, never replacing it
                manifest.append({"file": path.name, "layer": layer.name, "kind": tag, "instance_id": iid,
                                 "shape": [p.d_out, p.d_in], "pattern": p.pattern.describe()})
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_text(out_dir / "manifest.json", json.dumps({"metadata": metadata, "instances": manifest}, indent=2))
    return manifest
