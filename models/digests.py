"""The one file digest of ``models/``: sha256 of a file's bytes, read in blocks by :func:`hashlib.file_digest`.

Used wherever a file is identified or verified: dataset files in the run record
(:mod:`models.protocol_data`), the dequantised-model cache (:mod:`models.model_cache`) and the
assembled Gemma-3 GGUF (:mod:`models.gemma3_source`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """sha256 (hex) of the bytes of the file at ``path``."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
