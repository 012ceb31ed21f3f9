"""Output paths: inputs are never overwritten, files appear whole with the usual permissions."""

from __future__ import annotations

import pytest

from bench.errors import OutputPathError
from bench.paths import atomic_write_text, file_mode, refuse_overwrite, store_files


def test_refuse_overwrite_matches_the_same_file_under_any_spelling(tmp_path, monkeypatch):
    instance = tmp_path / "inst.safetensors"
    instance.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    for spelling in (instance, "inst.safetensors", "./inst.safetensors", tmp_path / "sub" / ".." / "inst.safetensors"):
        with pytest.raises(OutputPathError, match="refusing to overwrite the input"):
            refuse_overwrite(spelling, "other.bin", instance)
    link = tmp_path / "link.safetensors"
    link.symlink_to(instance)
    with pytest.raises(OutputPathError):
        refuse_overwrite(link, instance)  # the same file through a link
    refuse_overwrite(tmp_path / "out.safetensors", instance)  # a different path is fine
    assert instance.read_bytes() == b"x"


def test_store_side_files_are_inputs_too(tmp_path):
    names = [p.name for p in store_files(tmp_path / "s.sqlite")]
    assert names == ["s.sqlite", "s.sqlite-wal", "s.sqlite-shm", "s.sqlite-journal"]
    with pytest.raises(OutputPathError):
        refuse_overwrite(tmp_path / "s.sqlite-wal", *store_files(tmp_path / "s.sqlite"))


def test_atomic_write_text_permissions_and_no_leftovers(tmp_path):
    target = tmp_path / "deep" / "out.md"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert target.stat().st_mode & 0o777 == file_mode()
    assert [p.name for p in target.parent.iterdir()] == ["out.md"]
    with pytest.raises(OutputPathError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputPathError, match="cannot write here"):
        atomic_write_text(blocker / "out.md", "x")  # a file where a folder should be
