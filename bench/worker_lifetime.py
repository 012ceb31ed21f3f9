"""Worker processes end when the runner that started them dies, even by SIGKILL.

A runner killed with SIGKILL cannot shut its process pool down; its spawned workers would be
re-parented (to PID 1 or a sub-reaper) and live on, each holding a few hundred MB. Two
mechanisms, installed by :func:`exit_with_parent` as the pool's initializer:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the
  thread that created it exits. The runner creates its workers from its main thread
  (``ProcessPoolExecutor`` with the spawn context starts them in ``submit``), so this fires
  when the runner process ends — and it works even while the worker is busy in C code
  holding the GIL;
* everywhere, a daemon thread that compares ``os.getppid()`` with the runner's PID every
  ``POLL_SECONDS`` and exits the worker when they differ (the portable fallback).

The PID is checked once right after ``prctl`` as well: a runner that died before the worker
got this far would otherwise never deliver the signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0
EXIT_CODE = 1


def _set_parent_death_signal() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, poll_seconds: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(EXIT_CODE)
        time.sleep(poll_seconds)


def exit_with_parent(parent_pid: int, poll_seconds: float = POLL_SECONDS) -> None:
    """Pool initializer: end this worker process when process ``parent_pid`` (the runner) dies."""
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the runner is already gone
        os._exit(EXIT_CODE)
    threading.Thread(target=_watch_parent, args=(parent_pid, poll_seconds), name="maskbench-parent-watch",
                     daemon=True).start()
