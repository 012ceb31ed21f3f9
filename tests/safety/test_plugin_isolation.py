"""Issue 34, part 5: a plugin that calls sys.exit or raises a multi-line error at import is listed as
unavailable in one line; every command still works (installation simulated as in
tests/solvers/test_registry_plugins.py)."""

from __future__ import annotations

import json
import os

from tests.solvers.test_registry_plugins import _install


def test_exiting_and_multiline_plugins_are_isolated(tmp_path, monkeypatch, cli):
    site = tmp_path / "site"
    _install(site, "maskbench_exits", "[maskbench.solvers]\nexits = exiting_plugin\n")
    _install(site, "maskbench_multi", "[maskbench.solvers]\nmulti = multiline_plugin\n")
    (site / "exiting_plugin.py").write_text("import sys\nprint('bye')\nsys.exit(3)\n")
    (site / "multiline_plugin.py").write_text("raise ValueError('first line\\nsecond line\\nthird line')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    proc = cli("solvers")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert "wanda" in rows and "bye" not in proc.stdout
    assert "sys.exit(3)" in rows["exits"] and " no " in rows["exits"]
    assert "first line second line third line" in rows["multi"]
    assert proc.stderr.strip() == ""
    infos = {i["name"]: i for i in json.loads(cli("solvers", "--json", check=True).stdout)}
    assert not infos["exits"]["available"] and "\n" not in infos["multi"]["reason"]
