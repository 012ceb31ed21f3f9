"""Issue 34, part 2: the dequantised-model cache is verified before use; a damaged entry is rebuilt."""

from __future__ import annotations

import json

import pytest

from models import model_cache
from tests.models.test_model_cache import _tiny_with_tokenizer


@pytest.fixture
def entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    model, tokenizer = _tiny_with_tokenizer(tmp_path)
    path = model_cache.store("0123abcd", "tiny", model, tokenizer)
    assert path is not None and model_cache.cached_entry("0123abcd") == path
    return path, model, tokenizer


def _one_warning(capsys) -> str:
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("maskbench: warning:"), lines
    return lines[0]


def test_zeroed_middle_of_the_weights_is_detected_and_rebuilt(entry, capsys):
    path, model, tokenizer = entry
    weights = path / model_cache.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    third = len(data) // 3
    data[third:2 * third] = bytes(third)  # same size, zeros in the middle: only a checksum sees it
    weights.write_bytes(bytes(data))
    capsys.readouterr()
    assert model_cache.cached_entry("0123abcd") is None
    assert "sha256" in _one_warning(capsys) and not path.exists()
    assert model_cache.store("0123abcd", "tiny", model, tokenizer) == path  # rebuilt
    assert model_cache.cached_entry("0123abcd") == path


def test_truncated_cache_file_is_a_warning_not_a_traceback(entry, capsys):
    path, _, _ = entry
    weights = path / model_cache.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    assert model_cache.cached_entry("0123abcd") is None
    assert "bytes" in _one_warning(capsys)


def test_entry_without_checksums_is_rebuilt(entry, capsys):
    path, _, _ = entry
    marker = path / model_cache.COMPLETE_MARKER
    data = json.loads(marker.read_text())
    data.pop("files")
    marker.write_text(json.dumps(data))
    capsys.readouterr()
    assert model_cache.cached_entry("0123abcd") is None
    assert "older maskbench" in _one_warning(capsys)


def test_marker_records_every_file(entry):
    path, _, _ = entry
    records = json.loads((path / model_cache.COMPLETE_MARKER).read_text())["files"]
    names = {p.name for p in path.iterdir()} - {model_cache.COMPLETE_MARKER}
    assert set(records) == names and all(len(r["sha256"]) == 64 for r in records.values())
