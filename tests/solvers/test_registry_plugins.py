"""A researcher's own solver package, declared in the entry-point group ``maskbench.solvers``,
appears in ``maskbench solvers``, runs through ``solve`` (also in chains), in suites and in reports;
a broken plugin is listed as unavailable instead of breaking the registry.

The example package is ``tests/plugin_example`` (its pyproject.toml declares the entry point).
Installing it is simulated by writing the ``.dist-info`` that pip would write, so the test needs
no network and no build: importlib.metadata reads entry points from any folder on the path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "plugin_example"


def _install(site: Path, dist: str, entry_points: str) -> None:
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _install(site, "maskbench_random", "[maskbench.solvers]\nrandom = maskbench_random\n")
    _install(site, "maskbench_broken", "[maskbench.solvers]\nbroken = maskbench_no_such_module\n")
    path = os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    return site


def test_plugin_solver_is_listed_and_a_broken_one_is_unavailable(plugin_path, cli):
    proc = cli("solvers", "--json", check=True)
    infos = {i["name"]: i for i in json.loads(proc.stdout)}
    assert infos["random"]["available"] and infos["random"]["kind"] == "baseline"
    assert not infos["broken"]["available"]
    assert "maskbench_no_such_module" in infos["broken"]["reason"]
    assert infos["wanda"]["available"]  # built-ins unaffected


def test_plugin_solver_solves_alone_and_in_a_chain(plugin_path, cli, tmp_path):
    inst = tmp_path / "inst.safetensors"
    cli("generate", "--family", "tiny", "--d-in", "16", "--d-out", "6", "--seed", "3", "-o", inst, check=True)
    alone = json.loads(cli("solve", inst, "--solver", "random", "--seed", "5", "--json", check=True).stdout)
    again = json.loads(cli("solve", inst, "--solver", "random", "--seed", "5", "--json", check=True).stdout)
    chained = json.loads(cli("solve", inst, "--solver", "random+swap", "--seed", "5", "--json", check=True).stdout)
    wanda = json.loads(cli("solve", inst, "--solver", "wanda", "--json", check=True).stdout)
    assert alone["status"] == "feasible" and alone["objective"] == again["objective"]
    assert chained["warm_start"] == "random"
    assert chained["objective"] <= alone["objective"]
    assert alone["objective"] > wanda["objective"]  # the floor: random masks are worse than Wanda here
    broken = cli("solve", inst, "--solver", "broken")
    assert broken.returncode == 2
    assert broken.stderr.startswith("maskbench: error:") and len(broken.stderr.strip().splitlines()) == 1


def test_plugin_solver_runs_in_a_suite_and_appears_in_the_report(plugin_path, cli, tmp_path):
    suite = tmp_path / "plugin.toml"
    suite.write_text('name = "plugin"\n'
                     '[[instances]]\nkind = "generated"\nfamily = "tiny"\nd_in = 12\nd_out = 4\nseeds = [0]\n'
                     '[[solvers]]\nname = "random"\n'
                     '[[solvers]]\nname = "bruteforce"\n')
    store = tmp_path / "store.sqlite"
    report = tmp_path / "report"
    cli("run", suite, "--store", store, "--workers", "1", "--report-dir", report, check=True)
    text = (report / "report.md").read_text()
    assert "random" in text and "bruteforce" in text
