"""Issue 34, part 2: a damaged compiled kernel is found in a child process, never loaded here; it is rebuilt."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from solvers.refiners import cpu_kernels, kernel_build


def _name() -> str:
    return kernel_build.build_name(cpu_kernels.EXTENSION_PREFIX, cpu_kernels.source_text(), cpu_kernels.CFLAGS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache holding the built kernel (copied from the user's cache when it is there, else compiled)."""
    root = tmp_path_factory.mktemp("kcache")
    name = _name()
    mine = kernel_build.cache_root() / "extensions" / name
    if (mine / f"{name}.so").exists():
        shutil.copytree(mine, root / "extensions" / name, ignore=shutil.ignore_patterns("lock", "*.sha256"))
    else:
        mp = pytest.MonkeyPatch()
        mp.setenv("MASKBENCH_CACHE", str(root))
        kernel_build.build_extension(cpu_kernels.EXTENSION_PREFIX, cpu_kernels.source_text(), cpu_kernels.FUNCTIONS,
                                     cpu_kernels.CFLAGS)
        mp.undo()
    return root


def _fresh(built, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(built, root)
    name = _name()
    library = root / "extensions" / name / f"{name}.so"
    (library.parent / (library.name + ".sha256")).unlink(missing_ok=True)
    return root, library


def test_a_truncated_library_is_refused_by_a_child_probe(built, tmp_path):
    _, library = _fresh(built, tmp_path)
    assert kernel_build.library_problem(library, _name()) is None  # an intact one loads and is recorded
    assert (library.parent / (library.name + ".sha256")).exists()
    data = library.read_bytes()
    library.write_bytes(data[: len(data) // 2])
    problem = kernel_build.library_problem(library, _name())  # this process survives: the child took the hit
    assert problem is not None and "loading it" in problem


@pytest.mark.slow
def test_solve_with_a_truncated_kernel_rebuilds_it_with_one_warning(built, tmp_path):
    root, library = _fresh(built, tmp_path)
    data = library.read_bytes()
    library.write_bytes(data[: len(data) // 2])
    inst = tmp_path / "i.safetensors"
    code = ("import sys\nfrom bench.cli import main\n"
            "sys.exit(main(['generate', '--family', 'tiny', '--d-in', '16', '--d-out', '4', '-o', sys.argv[1]])"
            " or main(['solve', sys.argv[1], '--solver', 'swap', '--warm-start', 'wanda', '--set', 'backend=\"cpp\"']))")
    import os

    env = {**os.environ, "MASKBENCH_CACHE": str(root)}
    done = subprocess.run([sys.executable, "-c", code, str(inst)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    warnings = [x for x in done.stderr.splitlines() if "damaged" in x]
    assert len(warnings) == 1 and "rebuilding" in warnings[0]
    assert library.stat().st_size > len(data) // 2
