"""Saving a pruned model without ever leaving a half-written or mixed folder behind.

``save_pretrained`` writes file after file straight into its folder: interrupted, it leaves a
folder whose config and weights disagree, and it writes through (or over) whatever the names
already are. Here the model and tokenizer are first written into a temporary folder beside the
target, then each file is moved into the target with ``os.replace`` (atomic per file, same file
system). A name in the target that is a symlink is replaced at the file it points to, never the
link itself. The caller (``maskbench prune --save``) has already refused a target that is the
input model, lies inside it, is a file or cannot be written (:func:`bench.paths.output_directory`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_pruned(model, tokenizer, folder: str | Path) -> list[Path]:
    """Write ``model`` (safetensors) and ``tokenizer`` into ``folder``; returns the files written."""
    final = Path(folder).resolve()
    final.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".maskbench-save.", dir=final))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        written = []
        for item in sorted(staging.rglob("*")):
            if item.is_dir():
                continue
            target = (final / item.relative_to(staging)).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(item, 0o666 & ~_umask())
            os.replace(item, target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_text(path: str | Path, text: str) -> Path:
    """``text`` (UTF-8) written to the resolved ``path`` through a temporary file and ``os.replace``."""
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
