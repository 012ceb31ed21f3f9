"""A cache of dequantised GGUF models, so that only the first load pays for the dequantisation.

transformers dequantises a GGUF file tensor by tensor in Python and converts its tokenizer from
the GGUF vocabulary: about 35–50 s for SmolLM2-135M on 2 shared cores. The result is an ordinary
fp32 model, so it is written once as a Hugging Face directory and later loaded from there
(about a second):

    $MASKBENCH_CACHE/models/<weights digest>/
        config.json, generation_config.json     the GGUF-derived config (without its GGUF marker)
        model.safetensors                       every distinct tensor, fp32 (tied weights once)
        tokenizer.json, tokenizer_config.json   the converted fast tokenizer
        maskbench.json                          written last: the entry is complete

``maskbench.json`` records the size and sha256 of every other file; an entry is verified against
them before each use, and a damaged one (truncated, overwritten, edited) is removed with a one-line
warning and rebuilt (:func:`cached_entry`).

``<weights digest>`` is :attr:`models.loading.ModelSource.weights_digest` — the sha256 of the GGUF
file's bytes — so an edited or replaced GGUF file never meets a stale entry. The cache root is
:func:`solvers.refiners.kernel_build.cache_root` (``$MASKBENCH_CACHE``, default ``~/.cache/maskbench``).

Why it is exact: the safetensors file holds the very fp32 tensors transformers produced, and
loading them back copies bytes, so the cached model's state dict is bit-identical to the
dequantised one (``tests/models/test_model_cache.py`` checks this, and the tokenizer's ids).

Writes are atomic: the entry is assembled in a temporary sibling directory and renamed into
place, so an interrupted or concurrent first load leaves no half entry behind (a loser of the
rename race discards its copy). A cache that cannot be written (read-only, disk full) only costs
a one-line warning; ``MASKBENCH_NO_MODEL_CACHE=1`` bypasses the cache entirely.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from models.digests import sha256_file
from solvers.refiners.kernel_build import cache_root

COMPLETE_MARKER = "maskbench.json"
WEIGHTS_FILE = "model.safetensors"
DISABLE_ENV = "MASKBENCH_NO_MODEL_CACHE"


def cache_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") not in ("", "0")


def entry_directory(digest: str) -> Path:
    """Where the dequantised model with GGUF digest ``digest`` lives (complete or not)."""
    return cache_root() / "models" / digest


def file_records(folder: Path) -> dict[str, dict]:
    """``{name: {"bytes": size, "sha256": hex}}`` of every file of an entry except the marker."""
    return {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != COMPLETE_MARKER}


def entry_problem(path: Path) -> str | None:
    """Why the entry at ``path`` must not be used (None when every recorded file has its recorded size and
    sha256). Sizes first (a truncated file costs nothing to find), then the full hashes."""
    try:
        records = json.loads((path / COMPLETE_MARKER).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError) as exc:
        return f"unreadable {COMPLETE_MARKER} ({exc})"
    if not isinstance(records, dict) or WEIGHTS_FILE not in records:
        return "written by an older maskbench without checksums"
    for name, record in records.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != record.get("bytes"):
            return f"{name} has {file.stat().st_size} bytes, {record.get('bytes')} were written"
    for name, record in records.items():
        if sha256_file(path / name) != record.get("sha256"):
            return f"{name} does not match the sha256 recorded when it was written"
    return None


def cached_entry(digest: str) -> Path | None:
    """The complete, verified cache entry for ``digest``, or None.

    Every file is checked against the size and sha256 recorded when the entry was written (about 1.4 s
    for SmolLM2-135M's 517 MB on the 2-core development machine; see docs/safety.md). A damaged
    entry is removed with a one-line warning, so the caller dequantises again and writes it anew."""
    path = entry_directory(digest)
    if not ((path / COMPLETE_MARKER).is_file() and (path / WEIGHTS_FILE).is_file()):
        return None
    problem = entry_problem(path)
    if problem is None:
        return path
    _warn(f"the cached dequantised model {path} is damaged ({problem}); rebuilding it")
    shutil.rmtree(path, ignore_errors=True)
    return None


def distinct_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied (storage-sharing) tensors kept once, under their first name.

    safetensors refuses shared storage; transformers re-ties e.g. ``lm_head.weight`` to
    ``model.embed_tokens.weight`` on load from ``tie_word_embeddings`` in the config.
    """
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor.detach().to("cpu").contiguous()
    return out


def _warn(message: str) -> None:
    print(f"maskbench: warning: {message}", file=sys.stderr, flush=True)


def store(digest: str, source_name: str, model: torch.nn.Module, tokenizer) -> Path | None:
    """Write ``model`` (fp32, as dequantised) and ``tokenizer`` as the entry for ``digest``.

    Returns the entry's path, or None (with a warning) when the cache cannot be written.
    """
    from safetensors.torch import save_file

    final = entry_directory(digest)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the entry gets the usual permissions
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # the tensors are plain fp32 now
        config.pop("_name_or_path", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        save_file(distinct_tensors(model), str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        import transformers

        marker = {"files": file_records(tmp), "source": source_name, "weights_digest": digest, "dtype": "float32",
                  "transformers": transformers.__version__, "torch": torch.__version__}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2))
        for path in tmp.iterdir():
            os.chmod(path, 0o666 & ~_umask())
        if final.exists() and not (final / COMPLETE_MARKER).is_file():
            shutil.rmtree(final)  # an incomplete entry (e.g. copied by hand): replace it
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():  # not a lost race with an identical entry: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return final
    except OSError as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _warn(f"could not cache the dequantised model under {final} ({exc.strerror or exc}); "
              "the next load dequantises again")
        return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
