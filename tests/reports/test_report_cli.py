"""`maskbench report`: default folder beside the store, --formats, one-line error for a bad format."""

from __future__ import annotations

SUITE = """name = "tinyrep"
[[instances]]
kind = "generated"
family = "tiny"
d_in = 12
d_out = 4
seeds = [0]
[[solvers]]
name = "bruteforce"
[[solvers]]
name = "wanda"
[[solvers]]
name = "swap"
warm_start = "wanda"
"""


def test_report_default_out_and_formats(cli, tmp_path):
    suite = tmp_path / "tinyrep.toml"
    suite.write_text(SUITE)
    store = tmp_path / "store" / "s.sqlite"
    run = cli("run", suite, "--store", store, "--no-report", "--workers", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    proc = cli("report", "--store", store, "--formats", "png,svg")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = store.parent / "report-tinyrep"
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "table_gap.tex", "fig_gap_vs_d.png", "fig_gap_vs_d.svg"} <= names
    assert not any(n.endswith(".pdf") for n in names)            # only the formats asked for
    bad = cli("report", "--store", store, "--formats", "png,gif")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "maskbench: error: --formats: unknown figure format(s) gif; choose from png, pdf, svg"]
