"""Materialising a suite's instance sources: generated files are cached, file sources must match something."""

import pytest

from bench.errors import SuiteError
from bench.instances import materialise


def test_generated_scalars_and_lists_expand_and_are_cached(tmp_path):
    src = {"kind": "generated", "family": "tiny", "d_in": 12, "d_out": 2, "pattern": ["per-row", "2:4"], "seeds": 1}
    refs = materialise([src], tmp_path, tmp_path / "cache")
    assert len(refs) == 2 and {r.info["pattern"] for r in refs} == {"per-row k=6", "2:4"}
    files = sorted(p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir())
    again = materialise([src, src], tmp_path, tmp_path / "cache")  # the same source twice: deduplicated
    assert [r.instance_id for r in again] == [r.instance_id for r in refs]
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()) == files  # not rewritten


def test_files_source_reads_a_folder_and_fails_loudly_when_empty(tmp_path):
    generated = materialise([{"kind": "generated", "family": "tiny", "d_in": 8, "d_out": 2, "seeds": [0, 1]}],
                            tmp_path, tmp_path / "inst")
    refs = materialise([{"kind": "files", "path": "inst"}], tmp_path, tmp_path / "cache")
    assert {r.instance_id for r in refs} == {r.instance_id for r in generated}
    with pytest.raises(SuiteError, match="no instance files found at .*nowhere"):
        materialise([{"kind": "files", "path": "nowhere/*.safetensors"}], tmp_path, tmp_path / "cache")
