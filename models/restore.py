"""Restoring a model's dense weights between prunes without a second copy of them in memory.

Pruning changes only the weights of the blocks' prunable layers (``weight *= mask``). To compare
several solvers on one loaded model (:class:`models.pipeline.PruningSession`), those weights are read
back from a **memory-mapped safetensors file** instead of from a clone kept in RAM (which for a 7B model
in float16 would be another 13 GB):

* the checkpoint itself, when its ``*.safetensors`` files hold every prunable weight under the model's
  own parameter names with the loaded values (checked on the first layer at set-up); for a GGUF model
  this is its dequantised cache entry (:mod:`models.model_cache`);
* otherwise a snapshot of just those weights, written once, before the first prune, to a temporary
  safetensors file (deleted when the session ends) — disk instead of memory.

Reading goes tensor by tensor through ``safetensors.safe_open`` (the OS pages the file in and out),
and the copy casts to the model's precision, so the restored weights equal the loaded ones bit for bit.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import torch
from torch import nn

from models.capture import block_layers


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Full parameter name → parameter, for the weight of every prunable layer in the blocks."""
    return {f"{layer.name}.weight": layer.module.weight for blk in block_layers(model) for layer in blk}


def _index(files: list[Path]) -> dict[str, Path]:
    from safetensors import safe_open

    where: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                where[key] = path
    return where


class DenseWeights:
    """The dense values of a model's prunable weights, on disk, memory-mapped (see module docstring)."""

    def __init__(self, model: nn.Module, checkpoint_files: list[Path] | None = None):
        self.params = prunable_parameters(model)
        self._tmpdir: Path | None = None
        self.where = self._from_checkpoint([Path(p) for p in checkpoint_files or []])
        self.source = "checkpoint"
        if self.where is None:
            self.where = self._snapshot()
            self.source = "snapshot"

    def _from_checkpoint(self, files: list[Path]) -> dict[str, Path] | None:
        files = [p for p in files if p.suffix == ".safetensors" and p.is_file()]
        if not files or not self.params:
            return None
        where = _index(files)
        if any(name not in where for name in self.params):
            return None
        first = next(iter(self.params))
        if not torch.equal(self._read(where, first), self.params[first].detach().cpu()):
            return None  # the checkpoint's values are not the loaded ones (a converted or edited model)
        return where

    def _snapshot(self) -> dict[str, Path]:
        from safetensors.torch import save_file

        self._tmpdir = Path(tempfile.mkdtemp(prefix="maskbench-dense-"))
        weakref.finalize(self, shutil.rmtree, str(self._tmpdir), True)
        path = self._tmpdir / "dense.safetensors"
        save_file({k: p.detach().to("cpu").contiguous() for k, p in self.params.items()}, str(path))
        return dict.fromkeys(self.params, path)

    def _read(self, where: dict[str, Path], name: str) -> torch.Tensor:
        from safetensors import safe_open

        param = self.params[name]
        with safe_open(str(where[name]), framework="pt") as fh:
            return fh.get_tensor(name).to(param.dtype)

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the dense values back into the model's prunable weights, in place."""
        from safetensors import safe_open

        by_file: dict[Path, list[str]] = {}
        for name, path in self.where.items():
            if name in self.params:
                by_file.setdefault(path, []).append(name)
        for path, names in by_file.items():
            with safe_open(str(path), framework="pt") as fh:
                for name in names:
                    self.params[name].copy_(fh.get_tensor(name))
