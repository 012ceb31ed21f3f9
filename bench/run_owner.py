"""Who is executing a run: one runner process owns a run at a time, proven by a heartbeat.

Two runners of the same suite on one store would otherwise both "resume" the same run and
compute every task twice. The runner that starts or resumes a run records itself as the run's
owner (host, PID, a random token, a heartbeat time) in the store, in the same transaction in
which it picks the run; a second runner finds a live owner and is refused with a message
naming it. An owner is *gone* — and the run may be taken over — when

* it ran on this host and its PID no longer exists (a killed runner, even by SIGKILL), or
* its heartbeat is older than ``STALE_SECONDS`` (another host, or a PID reused here).

The owner beats every ``HEARTBEAT_SECONDS`` from a background thread, so long tasks (a
whole-model prune takes minutes) keep the claim; ``STALE_SECONDS`` is eight beats, enough to
ride out a store busy for the 60 s SQLite timeout.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 8 * HEARTBEAT_SECONDS


@dataclass(frozen=True)
class RunOwner:
    """A runner process: host name, PID and a token unique to this runner."""

    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r}"


def pid_exists(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def owner_is_gone(owner: RunOwner, heartbeat: float, now: float | None = None,
                  stale_seconds: float = STALE_SECONDS) -> bool:
    """Whether a run's recorded owner has stopped (see the module docstring for the rule)."""
    now = time.time() if now is None else now
    if now - heartbeat > stale_seconds:
        return True
    return owner.host == socket.gethostname() and not pid_exists(owner.pid)
