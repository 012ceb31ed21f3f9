"""Shared helpers of the safety tests: one in-process CLI call and byte snapshots of inputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.cli import main


def call(capsys, *argv) -> tuple[int, str, str]:
    """``maskbench ARGV`` in-process: ``(exit code, stdout, stderr)`` (argparse exits become codes)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit 2, exactly one stderr line, no traceback, mentioning every needle."""
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def snapshot(*paths: Path) -> dict[str, str]:
    """sha256 (or link target / file type) of each path, to prove a command left its inputs alone."""
    out = {}
    for p in paths:
        if p.is_symlink():
            out[str(p)] = "link->" + os.readlink(p)
        elif p.is_fifo():
            out[str(p)] = "fifo"
        elif p.is_dir():
            out[str(p)] = "dir:" + ",".join(sorted(x.name for x in p.iterdir()))
        elif p.exists():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "missing"
    return out
