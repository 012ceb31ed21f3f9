"""Keeping text that libraries print from C off a command's standard output.

:func:`stdout_to_stderr` points file descriptor 1 at stderr for the duration of a ``with`` block, so
whatever is written there — by C code (HiGHS's banner), by Python through ``sys.stdout``'s file
descriptor, by child processes that inherit it — lands on stderr. Python's and C's buffers are
flushed on the way in and out, so nothing written before the block reaches stderr and nothing
written inside it reaches stdout later. Used by the HiGHS backend around its first solver
construction and by ``--json`` commands around the whole command.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator


def _flush_c_streams() -> None:
    """``fflush(NULL)``: write out every C stdio buffer (a no-op where libc cannot be loaded)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - platforms without a loadable libc
        pass


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 points at stderr inside the block and is restored afterwards."""
    sys.stdout.flush()
    _flush_c_streams()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        _flush_c_streams()
        os.dup2(saved, 1)
        os.close(saved)
