"""solvers/console.py: file descriptor 1 points at stderr inside the block, and is restored after it."""

from __future__ import annotations

import os
import sys

from solvers.console import stdout_to_stderr


def test_fd1_goes_to_stderr_inside_the_block_only(capfd):
    sys.stdout.write("python before, unflushed\n")  # flushed on entry: it stays on stdout
    with stdout_to_stderr():
        os.write(1, b"from fd 1 inside\n")
    os.write(1, b"from fd 1 after\n")
    out, err = capfd.readouterr()
    assert out == "python before, unflushed\nfrom fd 1 after\n"
    assert err == "from fd 1 inside\n"


def test_fd1_is_restored_after_an_exception(capfd):
    try:
        with stdout_to_stderr():
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""
