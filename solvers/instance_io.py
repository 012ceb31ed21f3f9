"""Instance and mask files — the maskbench interchange format (safetensors).

**Instance file** (``*.safetensors``):

* tensors ``weight`` [d_out, d_in] and ``gram`` [d_in, d_in], float32 or float64;
  optional ``input_mean`` and ``input_var`` [d_in] (calibration statistics, DSnoT needs them);
* string metadata ``format = "maskbench-instance"``, ``version = "1"``, and the pattern:
  ``pattern = "per-row"`` with ``k`` (pruned per row), or ``pattern = "n:m"`` with ``n``
  (kept per group) and ``m`` (group size); optional provenance keys such as ``model``,
  ``layer``, ``calibration``, ``nsamples``, ``seqlen``, ``seed``, ``source``.

**Mask file**: tensor ``mask`` [d_out, d_in], uint8 or bool, 1 = keep; metadata
``format = "maskbench-mask"`` and optionally ``instance_id``, ``solver``, ``objective``.

Any safetensors writer (Python, Rust, C++) can produce these files. Writes are atomic
(temporary file, then rename). A malformed file raises :class:`InstanceFileError`
naming the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from solvers.errors import InstanceFileError
from solvers.objective import as_mask
from solvers.pattern import PatternError, pattern_from_metadata
from solvers.problem import MaskProblem, ProblemError

INSTANCE_FORMAT = "maskbench-instance"
MASK_FORMAT = "maskbench-mask"
FORMAT_VERSION = "1"
PATTERN_KEYS = ("pattern", "k", "n", "m", "format", "version")


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.exists():
        raise InstanceFileError(f"{path}: no such {kind} file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except InstanceFileError:
        raise
    except Exception as exc:  # safetensors raises several types for corrupt headers/data
        detail = " ".join(str(exc).split())
        raise InstanceFileError(f"{path}: not a valid safetensors {kind} file ({type(exc).__name__}: {detail})") from None
    version = meta.get("version", FORMAT_VERSION)  # files of other writers may omit it: version 1
    if version != FORMAT_VERSION:
        raise InstanceFileError(f"{path}: {kind} file format version {version!r} is not supported "
                                f"(this maskbench reads version {FORMAT_VERSION})")
    return tensors, meta


def save_instance(problem: MaskProblem, path: str | os.PathLike) -> str:
    """Write ``problem`` to ``path``; returns its instance id."""
    tensors = {"weight": problem.weight, "gram": problem.gram}
    if problem.input_mean is not None:
        tensors["input_mean"] = problem.input_mean
    if problem.input_var is not None:
        tensors["input_var"] = problem.input_var
    meta = {k: v for k, v in problem.metadata.items() if k not in PATTERN_KEYS}
    meta.update(problem.pattern.to_metadata())
    meta.update(format=INSTANCE_FORMAT, version=FORMAT_VERSION)
    _atomic_save(tensors, Path(path), meta)
    return problem.instance_id()


def load_instance(path: str | os.PathLike, validate: bool = True) -> MaskProblem:
    """Read an instance file; errors name the file and what is wrong with it."""
    path = Path(path)
    tensors, meta = _read(path, "instance")
    if meta.get("format", INSTANCE_FORMAT) != INSTANCE_FORMAT:
        raise InstanceFileError(f"{path}: metadata format is {meta.get('format')!r}, not {INSTANCE_FORMAT!r}")
    missing = [k for k in ("weight", "gram") if k not in tensors]
    if missing:
        raise InstanceFileError(f"{path}: missing tensor(s) {', '.join(missing)}; has {sorted(tensors)}")
    for name, t in tensors.items():
        if t.dtype not in (torch.float32, torch.float64):
            raise InstanceFileError(f"{path}: tensor {name!r} has dtype {t.dtype}; expected float32 or float64")
    try:
        pattern = pattern_from_metadata(meta)
        provenance = {k: v for k, v in meta.items() if k not in PATTERN_KEYS}
        return MaskProblem(tensors["weight"], tensors["gram"], pattern, tensors.get("input_mean"),
                           tensors.get("input_var"), provenance, validate=validate)
    except (PatternError, ProblemError) as exc:
        raise InstanceFileError(f"{path}: {exc}") from None


def save_mask(mask, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a keep-mask (stored as uint8, 1 = keep)."""
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update(format=MASK_FORMAT, version=FORMAT_VERSION)
    _atomic_save({"mask": as_mask(mask).to(torch.uint8)}, Path(path), meta)


def load_mask(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, str]]:
    """Read a mask file: ``(bool mask, metadata)``."""
    path = Path(path)
    tensors, meta = _read(path, "mask")
    if meta.get("format", MASK_FORMAT) != MASK_FORMAT:
        raise InstanceFileError(f"{path}: metadata format is {meta.get('format')!r}, not {MASK_FORMAT!r} "
                                "(is this an instance file given as the mask?)")
    if "mask" not in tensors:
        raise InstanceFileError(f"{path}: no tensor named 'mask' (has {sorted(tensors)})")
    try:
        return as_mask(tensors["mask"]), meta
    except ValueError as exc:
        raise InstanceFileError(f"{path}: {exc}") from None
