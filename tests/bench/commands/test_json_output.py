"""Every ``--json`` command prints exactly one JSON document on stdout — for every registered
solver, including those whose libraries print banners from C (HiGHS) or from worker processes —
and every log line goes to stderr."""

from __future__ import annotations

import json

import pytest

from solvers import available_solvers

SOLVERS = [i.name for i in available_solvers() if i.available]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    from bench.cli import main

    path = tmp_path_factory.mktemp("json") / "inst.safetensors"
    assert main(["generate", "--family", "tiny", "--d-in", "16", "--d-out", "4", "--seed", "1", "-o", str(path)]) == 0
    return path


def _one_document(stdout: str):
    document = json.loads(stdout)  # raises on a banner, on two documents, on NaN
    assert stdout.strip().count("\n") == 0 or stdout.lstrip().startswith(("[", "{"))
    return document


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_solve_json_is_one_document_for_every_solver(solver, instance, cli, tmp_path):
    extra = ["--set", "workers=2"] if solver in ("highs", "cbc", "scip", "gurobi", "bruteforce", "sdpbb") else []
    proc = cli("solve", instance, "--solver", solver, "--json", "--out", tmp_path / "m.safetensors", *extra)
    assert proc.returncode == 0, proc.stderr
    summary = _one_document(proc.stdout)
    assert summary["solver"] == solver and summary["status"] in ("optimal", "feasible")
    evaluated = _one_document(cli("eval", instance, tmp_path / "m.safetensors", "--json", check=True).stdout)
    assert evaluated["objective"] == pytest.approx(summary["objective"], rel=1e-12)


def test_solvers_json_is_one_document(cli):
    listed = _one_document(cli("solvers", "--json", check=True).stdout)
    assert {i["name"] for i in listed} >= set(SOLVERS)


def test_json_stdout_sends_c_level_and_python_prints_to_stderr(capfd):
    import os
    import sys

    from bench.jsonout import emit_json, json_stdout

    with json_stdout():
        os.write(1, b"banner from C\n")
        print("a python-level log line")
        emit_json({"x": float("nan"), "y": 1})
        print("after the document", file=sys.stdout)
    out, err = capfd.readouterr()
    assert json.loads(out) == {"x": None, "y": 1}
    assert "banner from C" in err and "a python-level log line" in err and "after the document" in err


def test_broken_pipe_exits_quietly(monkeypatch, tmp_path, capsys):
    """``maskbench solvers | head -1``: the reader is gone; no traceback, the SIGPIPE exit status."""
    import io

    from bench.cli import main

    class ClosedPipe(io.TextIOWrapper):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    sink = open(tmp_path / "sink", "w+b")  # noqa: SIM115 -- closed below
    monkeypatch.setattr("sys.stdout", ClosedPipe(sink))
    try:
        assert main(["solvers"]) == 141
    finally:
        sink.close()
    assert "Traceback" not in capsys.readouterr().err
