"""Report assembly from plain data frames: every figure and table, gaps to references."""

import json

import pandas as pd
import pytest

from reports.build import prepare, render_report
from reports.formatting import markdown_table


def test_report_figures_from_synthetic_rows(tmp_path):
    """Every figure is produced when the rows hold the data it needs."""
    def row(iid, solver, name, kind, obj, status="feasible", ws=None, layer=None, d=16, trace=None, wso=None):
        info = {"d_in": d, "d_out": 4, "pattern": "per-row", "family": "crop" if layer else "tiny"}
        if layer:
            info["layer"] = layer
        return {"instance_id": iid, "instance_json": json.dumps(info), "solver": solver, "solver_name": name,
                "warm_start": ws, "status": status, "objective": obj, "lower_bound": obj if status == "optimal" else None,
                "build_seconds": 0.1, "solve_seconds": d / 10, "trace_json": json.dumps(trace or []),
                "extra_json": json.dumps({"solver_kind": kind, "warm_start_objective": wso}),
                "settings_hash": solver, "verified": 1}
    rows = []
    for b in range(3):
        for t in ("q_proj", "down_proj"):
            iid = f"i{b}{t}"
            layer = f"model.layers.{b}.self_attn.{t}"
            rows += [row(iid, "highs", "highs", "exact", 1.0, "optimal", layer=layer, d=16 + 16 * b),
                     row(iid, "wanda", "wanda", "baseline", 1.5, layer=layer),
                     row(iid, "wanda+swap", "swap", "refiner", 1.1, ws="wanda", layer=layer, wso=1.5,
                         trace=[[0, 1.5], [0.1, 1.2], [0.2, 1.1]])]
    frame = pd.DataFrame(rows)
    prune = pd.DataFrame([{"model": "m", "solver": "swap", "warm_start": "wanda", "chain": "wanda+swap", "sparsity": 0.5,
                           "pattern": "per-row", "dense_ppl": 10.0, "pruned_ppl": 12.0, "seconds": 3.0,
                           "layers_json": json.dumps([{"name": "model.layers.0.mlp.up_proj", "objective": 1.0,
                                                       "warm_start_objective": 2.0}])}])
    files = render_report(prepare(frame), prune, {"suite": "x", "run": 1, "machine": {}}, tmp_path)
    names = {f.name for f in files}
    assert {"fig_performance_profile.png", "fig_swap_convergence.png", "fig_layer_reduction.png",
            "fig_exact_time_vs_d.png", "report.md", "report.html"} <= names
    md = (tmp_path / "report.md").read_text()
    assert "12" in md and "50" in md  # pruned ppl and 50 % layer reduction appear
    gaps = prepare(frame).set_index(["instance_id", "solver"])["gap_to_ref"]
    assert gaps[("i0q_proj", "wanda")] == pytest.approx(0.5) and gaps[("i0q_proj", "highs")] == 0


def test_markdown_tables_keep_the_formatted_cells():
    """tabulate would re-parse '8.05e+05' and print 805000 next to 1.75e+07; the report keeps the strings."""
    table = pd.DataFrame({"solver": ["a", "b"], "max gap %": ["8.05e+05", "1.75e+07"], "min": ["0", "<0.001"]})
    text = markdown_table(table)
    assert "8.05e+05" in text and "805000" not in text and "<0.001" in text
    assert text.splitlines()[1] == "|:---------|------------:|-------:|"    # text left, numbers right
