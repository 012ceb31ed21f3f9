"""Which floating-point precision a model is stored in, and which one its blocks compute in.

``--dtype`` names the **storage** precision of the weights: ``float16``, ``bfloat16``, ``float32``,
or ``auto`` — the checkpoint's own ``torch_dtype`` (``config.json``; float32 when it names none).
A GGUF file has no such dtype: it is dequantised to float32, and ``auto`` keeps float32 (its
quantised grid is exactly representable there); asking for ``float16`` / ``bfloat16`` casts it.
The weights stay in that precision for the whole run: masks are applied in place
(``weight *= mask``, exact in every precision), and nothing keeps a second copy.

**Compute precision.** On CUDA a block computes in its storage precision (tensor cores). On the CPU
a half-precision GEMM is slow — on the 2-core development machine a 512 × 4096 × 11008 product took
7.8 s in float16 and 6.2 s in bfloat16 against 1.6 s in float32 — so there a half-precision block is
computed in float32: the block being worked on is materialised as a float32 copy (one block, see
:mod:`models.offload`), and the masked weights are written back in the storage precision. The
half-precision values are exactly representable in float32 and the masked weights are a subset of
them, so the stored result is the same as computing in half precision would give, up to
the activations' rounding (which float32 makes smaller). Statistics and objectives are float64 in
every case (:class:`solvers.problem.GramAccumulator`, :mod:`solvers.objective`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from models.errors import ModelLoadError

DTYPES: dict[str, torch.dtype] = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
DTYPE_CHOICES = ("auto", *DTYPES)
HALF = (torch.float16, torch.bfloat16)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float16`` → ``"float16"``."""
    return str(dtype).removeprefix("torch.")


def parse_dtype(text: str | torch.dtype | None) -> str:
    """Validate a ``--dtype`` value; returns one of :data:`DTYPE_CHOICES` (None → ``"auto"``)."""
    if text is None:
        return "auto"
    if isinstance(text, torch.dtype):
        text = dtype_name(text)
    name = str(text).lower()
    if name not in DTYPE_CHOICES:
        raise ModelLoadError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, got {text!r}")
    return name


def checkpoint_dtype(directory: Path) -> torch.dtype:
    """The ``torch_dtype`` (or transformers 5's ``dtype``) a Hugging Face directory's config names.

    float32 when the config names none or names something that is not a float type of :data:`DTYPES`.
    """
    try:
        config = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {directory}/config.json: {exc}") from None
    named = config.get("torch_dtype") or config.get("dtype") or (config.get("text_config") or {}).get("torch_dtype")
    return DTYPES.get(str(named).removeprefix("torch."), torch.float32)


def storage_dtype(requested: str, directory: Path, is_gguf: bool) -> torch.dtype:
    """The precision the weights are loaded and kept in (see module docstring)."""
    name = parse_dtype(requested)
    if name != "auto":
        return DTYPES[name]
    return torch.float32 if is_gguf else checkpoint_dtype(directory)


def compute_dtype(storage: torch.dtype, device: torch.device) -> torch.dtype:
    """The precision a block computes in on ``device``: the storage one, except half precision on a CPU."""
    if torch.device(device).type == "cpu" and storage in HALF:
        return torch.float32
    return storage
