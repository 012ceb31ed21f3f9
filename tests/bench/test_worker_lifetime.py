"""Each mechanism of bench.worker_lifetime on its own: a parent process is SIGKILLed, its child must end."""

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

# The parent starts one child running CHILD_CODE, prints the child's PID, then sleeps until killed.
PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
    print(child.pid, flush=True)
    time.sleep(600)
""")


def _kill_parent_and_wait_for_child(repo_root, child_code: str) -> bool:
    """True when the child is gone within 5 s of its parent's SIGKILL."""
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, child_code], stdout=subprocess.PIPE, text=True,
                              env=env, start_new_session=True)
    child = psutil.Process(int(parent.stdout.readline()))
    try:
        psutil.wait_procs([child], timeout=3)  # let it install its guard (it keeps running)
        assert child.is_running()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs([child], timeout=5)
        return not alive
    finally:
        if child.is_running():
            child.kill()


def test_parent_polling_ends_the_child(repo_root):
    code = "import sys; from bench.worker_lifetime import _watch_parent; _watch_parent(int(sys.argv[1]), 0.1)"
    assert _kill_parent_and_wait_for_child(repo_root, code)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_parent_death_signal_ends_a_busy_child(repo_root):
    # the child never returns to Python code that could poll: only the kernel's signal can end it
    code = ("import sys, time; from bench.worker_lifetime import _set_parent_death_signal; "
            "assert _set_parent_death_signal(); time.sleep(600)")
    assert _kill_parent_and_wait_for_child(repo_root, code)


def test_the_initializer_exits_at_once_when_the_parent_is_already_gone(repo_root):
    code = "from bench.worker_lifetime import exit_with_parent; exit_with_parent(1); import time; time.sleep(600)"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(repo_root)),
                          timeout=60)
    assert done.returncode == 1
