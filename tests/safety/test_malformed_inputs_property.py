"""Issue 34, part 6: property-based tests (hypothesis) of malformed inputs.

Generated: damaged instance, mask, suite and store files, and command lines. Whatever they are,
``maskbench`` must exit 0 (or 1, the regression gate's "regression" / a solver's "error" status, only
where a command documents it) or 2 with exactly one stderr line ``maskbench: error: …``; never a
traceback; every input file byte-identical afterwards. Calls run in-process (``bench.cli.main``), each
example in a fresh temporary folder; ``max_examples`` keeps the whole file to about a minute or two.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.cli import main
from tests.safety.helpers import snapshot

EXAMPLES = int(os.environ.get("MASKBENCH_HYPOTHESIS_EXAMPLES", "30"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


def run(*argv, allowed=(0, 2)) -> tuple[int, str, str]:
    """``maskbench ARGV`` in-process; asserts the exit code and the one-line-error rule."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert code in allowed, (argv, code, text)
    if code == 2:
        lines = [x for x in text.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("maskbench: error: "), (argv, text)
    return code, out.getvalue(), text


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Valid files to damage: an instance, a mask for it, a suite and a store (with one run)."""
    from bench.runner import run_suite
    from bench.store import ResultStore
    from bench.suites import load_suite
    from solvers import generate, save_instance, save_mask, solve
    from solvers.synthetic import SyntheticSpec
    from tests.bench.conftest import _write_suite

    root = tmp_path_factory.mktemp("seeds")
    problem = generate(SyntheticSpec(family="tiny", d_in=8, d_out=2, seed=0))
    save_instance(problem, root / "i.safetensors")
    save_mask(solve("wanda", problem).mask, root / "m.safetensors", {"instance_id": problem.instance_id()})
    suite = _write_suite(root, seeds="[0]")
    run_suite(load_suite(str(suite)), ResultStore(root / "s.sqlite"), workers=1, progress=False, log=lambda m: None)
    return Seeds({name: (root / name).read_bytes() for name in ("i.safetensors", "m.safetensors", "t.toml", "s.sqlite")})


class Seeds(dict):
    """The seed files' bytes, with a short repr for hypothesis' failure reports."""

    def __repr__(self) -> str:
        return "<seed files>"


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("zero"), st.tuples(st.floats(0, 1), st.floats(0, 1))),
    st.tuples(st.just("random"), st.binary(max_size=300)),
)


def damaged(data: bytes, how) -> bytes:
    kind, arg = how
    if kind == "truncate":
        return data[: int(arg * len(data))]
    if kind == "flip":
        out = bytearray(data)
        for where, xor in arg:
            i = min(int(where * len(out)), len(out) - 1)
            out[i] ^= xor
        return bytes(out)
    if kind == "zero":
        a, b = sorted(int(x * len(data)) for x in arg)
        return data[:a] + bytes(b - a) + data[b:]
    return arg


@contextlib.contextmanager
def folder():
    """A fresh temporary folder, also the working directory: a drawn relative output path lands there."""
    with tempfile.TemporaryDirectory(prefix="mb-prop-") as tmp:
        before = os.getcwd()
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(before)


@FAST
@given(how=damage, which=st.sampled_from(["i.safetensors", "m.safetensors"]))
def test_damaged_instance_or_mask(seeds, how, which):
    with folder() as tmp:
        for name in ("i.safetensors", "m.safetensors"):
            (tmp / name).write_bytes(seeds[name])
        (tmp / which).write_bytes(damaged(seeds[which], how))
        before = snapshot(tmp / "i.safetensors", tmp / "m.safetensors")
        run("eval", tmp / "i.safetensors", tmp / "m.safetensors")
        run("solve", tmp / "i.safetensors", "--solver", "magnitude", "--out", tmp / "out.safetensors",
            allowed=(0, 1, 2) if which == "i.safetensors" else (0, 2))
        run("solve", tmp / "i.safetensors", "--solver", "swap", "--warm-start", tmp / "m.safetensors",
            "--set", "backend=\"torch\"", allowed=(0, 1, 2))
        assert snapshot(tmp / "i.safetensors", tmp / "m.safetensors") == before


@FAST
@given(how=damage)
def test_damaged_store(seeds, how):
    with folder() as tmp:
        store = tmp / "s.sqlite"
        store.write_bytes(damaged(seeds["s.sqlite"], how))
        before = snapshot(store)
        run("export", "--store", store, "--csv", tmp / "o.csv")
        run("history", "--store", store)
        run("compare", store, store, allowed=(0, 1, 2))
        assert snapshot(store) == before


SUITE_VALUES = st.one_of(st.integers(-5, 40), st.floats(allow_nan=True, allow_infinity=True),
                         st.sampled_from(['"tiny"', '"2:4"', '"3:2"', '"per-row"', '"wanda"', '"nosuch"', '"generated"',
                                          '"files"', '"*.safetensors"', "[0, 1]", "[]", "true", '"magnitude"']))
SUITE_KEYS = st.sampled_from(["name", "kind", "family", "d_in", "d_out", "pattern", "seeds", "sparsity", "path",
                              "label", "time_limit", "max_d_in", "settings", "warm_start", "bogus"])


@st.composite
def suite_text(draw):
    """A TOML-ish suite: valid skeleton with random keys and values, or damaged bytes of a valid one."""
    def value(v):
        if isinstance(v, float):
            return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
        return str(v)
    lines = ['name = "p"', "[[instances]]", 'kind = "generated"', 'family = "tiny"', "d_in = 8", "d_out = 2",
             "seeds = [0]"]
    lines += [f"{draw(SUITE_KEYS)} = {value(draw(SUITE_VALUES))}" for _ in range(draw(st.integers(0, 3)))]
    lines += ["[[solvers]]", 'name = "wanda"']
    lines += [f"{draw(SUITE_KEYS)} = {value(draw(SUITE_VALUES))}" for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        return damaged("\n".join(lines).encode(), draw(damage))
    return "\n".join(lines).encode()


@FAST
@given(text=suite_text())
def test_malformed_suite(text):
    with folder() as tmp:
        suite = tmp / "p.toml"
        suite.write_bytes(text)
        before = snapshot(suite)
        code, _, _ = run("run", suite, "--store", tmp / "r.sqlite", "--workers", "1", "--no-report")
        assert snapshot(suite) == before
        if code == 2:
            assert not (tmp / "r.sqlite").exists() or os.path.getsize(tmp / "r.sqlite") > 0


OPTION_VALUES = st.sampled_from(["-1", "0", "1", "2", "1e9", "nan", "inf", "-", "x", "", "2:4", "3:2", "9:8",
                                 "per-row", "0.5", "1.5", "tiny", "wanda", "magnitude", "nosuch", "a+b", "++",
                                 "phases=10000000", "max_iters=-1", "tol=1e-3", "{", "/dev/null"])
COMMANDS = {
    "generate": ["--family", "--d-in", "--d-out", "--sparsity", "--pattern", "--dead-fraction", "--seed"],
    "solve": ["--solver", "--warm-start", "--time-limit", "--seed", "--set"],
    "eval": [],
    "export": ["--csv"],
    "compare": ["--tolerance", "--allow-missing"],
}


@st.composite
def command_line(draw):
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = [command]
    for option in draw(st.lists(st.sampled_from(COMMANDS[command] or ["--json"]), max_size=4)):
        argv += [option] if option in ("--allow-missing", "--json") else [option, draw(OPTION_VALUES)]
    return argv


@FAST
@given(argv=command_line(), positional=st.lists(st.sampled_from(["I", "M", "S", "X", "-1"]), max_size=3))
def test_random_command_lines(seeds, argv, positional):
    with folder() as tmp:
        files = {"I": tmp / "i.safetensors", "M": tmp / "m.safetensors", "S": tmp / "s.sqlite"}
        for key, name in (("I", "i.safetensors"), ("M", "m.safetensors"), ("S", "s.sqlite")):
            files[key].write_bytes(seeds[name])
        names = [str(files.get(p, tmp / "missing" if p == "X" else p)) for p in positional]
        command = argv[0]
        if command == "generate":
            argv = [*argv, "-o", tmp / "g.safetensors"]
            if "--family" in argv:  # keep it small whatever was drawn
                argv[argv.index("--family") + 1] = "tiny"
            argv += ["--family", "tiny"]
        if command == "export":
            argv = [*argv, "--store", files["S"]] + (["--csv", tmp / "o.csv"] if "--csv" not in argv else [])
        before = snapshot(*files.values())
        run(*argv, *names, allowed=(0, 1, 2))
        assert snapshot(*files.values()) == before
