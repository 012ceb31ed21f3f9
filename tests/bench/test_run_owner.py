"""The rule that decides whether a run's recorded owner has stopped (so the run may be taken over)."""

import os
import socket
import subprocess
import sys

from bench.run_owner import STALE_SECONDS, RunOwner, owner_is_gone, pid_exists


def _ended_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_owner_on_this_host_is_gone_when_its_process_is():
    now = 1000.0
    assert not owner_is_gone(RunOwner(pid=os.getpid()), heartbeat=now, now=now)
    assert owner_is_gone(RunOwner(pid=_ended_pid()), heartbeat=now, now=now)


def test_owner_elsewhere_is_gone_only_when_its_heartbeat_is_stale():
    other = RunOwner(host=socket.gethostname() + "-elsewhere", pid=_ended_pid())  # its PID means nothing here
    assert not owner_is_gone(other, heartbeat=1000.0, now=1000.0 + STALE_SECONDS - 1)
    assert owner_is_gone(other, heartbeat=1000.0, now=1000.0 + STALE_SECONDS + 1)
    # a live PID here whose heartbeat stopped long ago (the PID was reused): gone as well
    assert owner_is_gone(RunOwner(pid=os.getpid()), heartbeat=1000.0, now=1000.0 + STALE_SECONDS + 1)


def test_pid_exists():
    assert pid_exists(os.getpid()) and not pid_exists(_ended_pid())
