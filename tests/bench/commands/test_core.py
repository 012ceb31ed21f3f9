import json

import pytest

from bench.cli import build_parser
from solvers import load_instance


def test_help_everywhere(cli, capsys):
    out = cli("--help", check=True).stdout  # the real entry point once, in a subprocess
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for command in ("solvers", "generate", "solve", "eval", "run", "report", "export", "compare"):
        assert command in out and command in commands
    for command in commands:  # every sub-command's --help, in-process (each subprocess costs a torch import)
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage: maskbench " + command in capsys.readouterr().out


def test_solvers_table(cli):
    out = cli("solvers", check=True).stdout
    assert "wanda" in out and "baseline" in out
    rows = json.loads(cli("solvers", "--json", check=True).stdout)
    assert {"name", "kind", "available", "reason"} <= set(rows[0])


@pytest.mark.slow
def test_generate_solve_eval_round_trip(cli, tmp_path):
    inst, mask = tmp_path / "i.safetensors", tmp_path / "m.safetensors"
    cli("generate", "--family", "small", "--d-in", "32", "--d-out", "8", "--sparsity", "0.5", "--pattern", "2:4",
        "--seed", "0", "-o", inst, check=True)
    problem = load_instance(inst)
    assert (problem.d_out, problem.d_in, problem.pattern.describe()) == (8, 32, "2:4")
    out = cli("solve", inst, "--solver", "wanda", "--out", mask, "--json", check=True).stdout
    data = json.loads(out)
    for key in ("solver", "status", "objective", "lower_bound", "gap", "build_seconds", "solve_seconds",
                "iterations", "settings", "verified", "instance_id", "d_out", "d_in", "pattern"):
        assert key in data  # SolveResult.summary() plus the instance fields
    assert data["verified"] is True and data["pattern"] == "2:4"
    assert data["instance_id"] == problem.instance_id() and data["status"] == "feasible"
    ev = json.loads(cli("eval", inst, mask, "--json", check=True).stdout)
    assert ev["objective"] == data["objective"]


@pytest.mark.slow
def test_cli_errors_are_one_line(cli, tmp_path):
    proc = cli("solve", tmp_path / "missing.safetensors", "--solver", "wanda")
    assert proc.returncode == 2 and "maskbench: error:" in proc.stderr and "Traceback" not in proc.stderr
    inst = tmp_path / "i.safetensors"
    cli("generate", "--family", "tiny", "-o", inst, check=True)
    proc = cli("solve", inst, "--solver", "no-such-solver")
    assert proc.returncode == 2 and "unknown solver" in proc.stderr
    proc = cli("generate", "--family", "tiny", "--pattern", "2:3", "-o", inst)
    assert proc.returncode == 2 and "does not divide" in proc.stderr


def test_solve_refuses_to_write_its_mask_over_the_instance(tmp_path):
    from bench.cli import main

    inst = tmp_path / "inst.safetensors"
    assert main(["generate", "--family", "tiny", "--d-in", "12", "--d-out", "3", "-o", str(inst)]) == 0
    before = inst.read_bytes()
    assert main(["solve", str(inst), "--solver", "wanda", "--out", str(inst)]) == 2
    assert inst.read_bytes() == before


def test_eval_warns_when_the_mask_was_made_for_another_instance(tmp_path, capsys):
    from bench.cli import main

    a, b, mask = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "m.safetensors"
    for seed, path in ((0, a), (1, b)):
        assert main(["generate", "--family", "tiny", "--d-in", "12", "--d-out", "3", "--seed", str(seed),
                     "-o", str(path)]) == 0
    assert main(["solve", str(a), "--solver", "wanda", "--out", str(mask)]) == 0
    capsys.readouterr()
    assert main(["eval", str(b), str(mask)]) == 0  # feasible for b's pattern, so evaluated …
    assert "was made for instance" in capsys.readouterr().err  # … with a warning on stderr
    assert main(["eval", str(a), str(mask)]) == 0
    assert "was made for instance" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "solve", "report", "export"])
def test_unwritable_output_paths_are_one_line_errors(command, tmp_path, capsys):
    """An output under a path whose parent is a file cannot be written: one line, exit 2."""
    from bench.cli import main

    inst = tmp_path / "inst.safetensors"
    assert main(["generate", "--family", "tiny", "--d-in", "12", "--d-out", "3", "-o", str(inst)]) == 0
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    target = str(blocked / "out")
    if command in ("report", "export"):
        store = tmp_path / "s.sqlite"
        suite = tmp_path / "t.toml"
        suite.write_text('name = "t"\n[[instances]]\nkind = "files"\npath = "inst.safetensors"\n'
                         '[[solvers]]\nname = "wanda"\n')
        assert main(["run", str(suite), "--store", str(store), "--workers", "1", "--no-report"]) == 0
    argv = {"generate": ["generate", "--family", "tiny", "-o", target],
            "solve": ["solve", str(inst), "--solver", "wanda", "--out", target],
            "report": ["report", "--store", str(tmp_path / "s.sqlite"), "--out", target],
            "export": ["export", "--store", str(tmp_path / "s.sqlite"), "--csv", target]}[command]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("maskbench: error:") and len(err.strip().splitlines()) == 1


def test_solve_reconstruct_reports_the_refit_loss(tmp_path, capsys):
    from bench.cli import main

    inst = tmp_path / "i.safetensors"
    assert main(["generate", "--family", "small", "--seed", "1", "-o", str(inst)]) == 0
    capsys.readouterr()
    assert main(["solve", str(inst), "--solver", "wanda+swap", "--reconstruct", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["extra"]["objective_reconstructed"] < data["objective"]
    assert data["extra"]["reconstruction"]["method"] == "direct"
    assert main(["solve", str(inst), "--solver", "sparsegpt", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["extra"]["objective_with_weight_update"] < data["objective"]
