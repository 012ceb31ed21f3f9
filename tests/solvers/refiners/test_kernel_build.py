"""The C++ kernel's build: keyed cache names, a stale torch lock never hangs a later call, a busy
build times out into the torch fallback, and compiling is never counted as solve time."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

import solvers
from solvers.refiners import cpu_kernels, kernel_build


def _kernel_or_skip():
    if cpu_kernels.load() is None:
        pytest.skip(f"C++ kernels unavailable: {cpu_kernels.load_error()}")


def _builds_fail(monkeypatch, error: Exception) -> None:
    """From now on every build of the kernels raises ``error`` (nothing loaded yet)."""
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cpu_kernels, "build_extension", fail)
    monkeypatch.setattr(cpu_kernels, "_CACHE", {})


def _builds_take_six_seconds(monkeypatch) -> None:
    """From now on a build of the kernels takes 6 s (then hands back the real module; nothing loaded yet)."""
    _kernel_or_skip()
    module = cpu_kernels.load()

    def slow_build(*args, **kwargs):
        import time

        time.sleep(6.0)
        return module

    monkeypatch.setattr(cpu_kernels, "build_extension", slow_build)
    monkeypatch.setattr(cpu_kernels, "_CACHE", {})


def test_build_name_keys_on_source_and_flags():
    a = kernel_build.build_name("k", "int f();", ("-O3",))
    assert a == kernel_build.build_name("k", "int f();", ("-O3",))
    assert a != kernel_build.build_name("k", "int g();", ("-O3",))
    assert a != kernel_build.build_name("k", "int f();", ("-O2",))
    assert a.startswith("k_") and len(a) == len("k_") + 12


def test_stale_torch_lock_is_removed_instead_of_hanging(repo_root):
    _kernel_or_skip()
    name = kernel_build.build_name(cpu_kernels.EXTENSION_PREFIX, cpu_kernels.source_text(), cpu_kernels.CFLAGS)
    stale = kernel_build.cache_root() / "extensions" / name / "lock"
    stale.write_text("")  # what a build killed by Ctrl-C or a time-out leaves behind
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    code = "from solvers.refiners import cpu_kernels; print(cpu_kernels.load() is not None)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "True", proc.stderr
    assert "removed a stale build lock" in proc.stderr
    assert not stale.exists()


def test_a_build_held_by_another_process_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    name = kernel_build.build_name("never_built", "int f() { return 1; }", ())
    (tmp_path / "extensions").mkdir()
    with open(tmp_path / "extensions" / f"{name}.build-lock", "w") as other_owner:
        fcntl.flock(other_owner, fcntl.LOCK_EX)
        with pytest.raises(TimeoutError, match="another process"):
            kernel_build.build_extension("never_built", "int f() { return 1; }", ("f",), (), wait_seconds=0.3)


def test_unbuildable_kernel_falls_back_to_torch(monkeypatch, capsys):
    _builds_fail(monkeypatch, TimeoutError("another process has been compiling it for over 900 s"))
    problem = solvers.generate(family="tiny", d_in=16, d_out=4, seed=0)
    result = solvers.solve("swap", problem, warm_start="wanda", device="cpu")  # the kernel is CPU-only
    assert result.settings["backend"] == "torch" and result.status == "feasible"
    assert "using the pure-torch search" in capsys.readouterr().err


def test_compile_is_outside_the_timed_region(monkeypatch):
    """A (simulated) 6 s compile must not count as solve time nor eat a 5 s time limit (the solve itself
    takes milliseconds, so a loaded machine has seconds of headroom)."""
    _builds_take_six_seconds(monkeypatch)
    problem = solvers.generate(family="small", d_in=64, d_out=8, seed=0)
    result = solvers.solve("swap", problem, warm_start="wanda", time_limit=5.0, device="cpu")
    assert result.settings["backend"] == "cpp"
    assert result.status == "feasible"          # not time_limit: the 6 s were not on the clock
    assert result.solve_seconds < 5.0


def test_lns_falls_back_to_torch_when_the_kernels_do_not_build(monkeypatch, capsys):
    _builds_fail(monkeypatch, RuntimeError("no compiler"))
    problem = solvers.generate(family="tiny", d_in=16, d_out=4, seed=0)
    result = solvers.solve("lns", problem, warm_start="wanda+swap", device="cpu")
    assert result.settings["backend"] == "torch" and result.verified
    assert "using the pure-torch searches" in capsys.readouterr().err


def test_lns_compile_is_outside_the_timed_region(monkeypatch):
    """As for swap: a (simulated) 6 s build of the kernels is not lns's solve time."""
    problem = solvers.generate(family="small", d_in=64, d_out=8, seed=0)
    start = solvers.solve("wanda+swap", problem, device="cpu")
    _builds_take_six_seconds(monkeypatch)
    result = solvers.solve("lns", problem, warm_start=start, time_limit=5.0, device="cpu")
    assert result.settings["backend"] == "cpp"
    assert result.status == "feasible" and result.solve_seconds < 5.0
