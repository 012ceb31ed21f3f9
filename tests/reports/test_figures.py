"""Report figures: every figure from plain frames, as PNG (≥ 200 dpi at 3.3 in) + PDF (+ SVG), one style."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from reports.build import prepare, render_report
from reports.figures_time import quality_profile
from reports.style import COLUMN_WIDTH, StyleBook

LAYERS = ("q_proj", "o_proj", "down_proj")


def _row(iid, solver, name, kind, obj, *, status="feasible", ws=None, layer=None, d=16, trace=None, wso=None,
         settings=None, seconds=0.1, pattern="per-row k=8", crop=True):
    info = {"d_in": d, "d_out": 4, "pattern": pattern, "family": f"crop-d{d}" if layer else "tiny"}
    if layer:
        info["layer"] = layer
        if crop:
            info["crop"] = "0"
    else:
        info["source"] = "synthetic"
    return {"instance_id": iid, "instance_json": json.dumps(info), "solver": solver, "solver_name": name,
            "warm_start": ws, "status": status, "objective": obj, "lower_bound": obj if status == "optimal" else None,
            "build_seconds": 0.0, "solve_seconds": seconds, "trace_json": json.dumps(trace or []),
            "settings_json": json.dumps(settings or {}),
            "extra_json": json.dumps({"solver_kind": kind, "warm_start_objective": wso}), "settings_hash": solver,
            "verified": 1}


def _results() -> pd.DataFrame:
    rows = []
    for b in range(4):
        for t in LAYERS:
            for d in (16, 24, 32):
                iid, layer = f"{b}{t}{d}", f"model.layers.{b}.self_attn.{t}"
                rows += [_row(iid, "sdpbb", "sdpbb", "exact", 1.0, status="optimal", layer=layer, d=d, seconds=d / 8),
                         _row(iid, "wanda", "wanda", "baseline", 1.2, layer=layer, d=d),
                         _row(iid, "magnitude", "magnitude", "baseline", 1.6, layer=layer, d=d),
                         _row(iid, "wanda+swap", "swap", "refiner", 1.01, ws="wanda", layer=layer, d=d, wso=1.2,
                              trace=[[0, 1.2], [0.01, 1.05], [0.02, 1.01]]),
                         _row(iid, "magnitude+swap", "swap", "refiner", 1.02, ws="magnitude", layer=layer, d=d, wso=1.6),
                         _row(iid, "wanda+dsnot", "dsnot", "refiner", 1.25, ws="wanda", layer=layer, d=d, wso=1.2)]
                if d == 16:
                    rows.append(_row(iid, "bruteforce", "bruteforce", "exact", 1.0, status="optimal", layer=layer, d=d))
                for cap in (1, 2, 5):
                    rows.append(_row(iid, f"wanda+swap[T={cap}]", "swap", "refiner", 1.2 - 0.05 * cap, ws="wanda",
                                     layer=layer, d=d, wso=1.2, settings={"max_iters": cap}))
    for seed in range(3):
        iid = f"syn{seed}"
        rows += [_row(iid, "sdpbb", "sdpbb", "exact", 2.0, status="optimal", d=12, pattern="2:4", seconds=0.3),
                 _row(iid, "wanda", "wanda", "baseline", 2.5, d=12, pattern="2:4")]
    return pd.DataFrame(rows)


def _prune() -> pd.DataFrame:
    runs = []
    for method, ws, base in (("wanda", None, 30.0), ("swap", "wanda", 25.0), ("dsnot", "wanda", 29.0)):
        for pattern, sparsity, factor in (("per-row k=288", 0.5, 1.0), ("per-row k=345", 0.6, 1.6), ("2:4", 0.5, 2.0)):
            layers = [{"name": f"model.layers.{b}.mlp.up_proj", "objective": 1.0, "warm_start_objective": 2.0}
                      for b in range(3)] if ws else []
            runs.append({"model": "m", "solver": method, "warm_start": ws, "chain": f"{ws}+{method}" if ws else method,
                         "sparsity": sparsity, "pattern": pattern,
                         "dense_ppl": 20.0, "pruned_ppl": base * factor, "seconds": 60.0,
                         "layers_json": json.dumps(layers),
                         "protocol_json": json.dumps({"nsamples": "16", "seqlen": "256", "config": {"settings": {}}})})
    for cap, ppl in ((1, 28.0), (10, 26.0)):
        runs.append({"model": "m", "solver": "swap", "warm_start": "wanda", "chain": "wanda+swap", "sparsity": 0.5,
                     "pattern": "per-row k=288",
                     "dense_ppl": 20.0, "pruned_ppl": ppl, "seconds": 30.0, "layers_json": "[]",
                     "protocol_json": json.dumps({"config": {"settings": {"max_iters": cap}}})})
    return pd.DataFrame(runs)


EXPECTED = ("fig_gap_vs_d", "fig_warm_start", "fig_tmax", "fig_performance_profile", "fig_runtime_vs_size",
            "fig_swap_convergence", "fig_layer_reduction", "fig_exact_time_vs_d", "fig_perplexity")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep")
    files = render_report(prepare(_results()), _prune(), {"suite": "paper", "run": 3, "machine": {}}, out,
                         formats=("png", "pdf", "svg"))
    return out, files


def test_every_figure_in_every_format(report):
    out, files = report
    names = {f.name for f in files}
    for stem in EXPECTED:
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= names, stem
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
        width_px = mpimg.imread(out / f"{stem}.png").shape[1]
        assert width_px >= 200 * COLUMN_WIDTH * 0.9, (stem, width_px)   # bbox "tight" trims a little
    assert {"table_gap.tex", "table_runtime.tex", "table_perplexity.tex"} <= names


def test_captions_say_what_was_run(report):
    out, _ = report
    md = (out / "report.md").read_text()
    assert md.count("**Figure ") == len(EXPECTED)
    assert "Suite paper (run 3)." in md and "n = " in md
    assert "('" not in md and "e+0" not in md          # no tuple labels, no stray scientific notation
    html = (out / "report.html").read_text()
    assert "**" not in html and "`" not in html        # Markdown markup does not leak into the HTML


def test_style_book_distinct_and_stable():
    names = [f"s{i}" for i in range(15)]
    book = StyleBook(names)
    styles = [book(n) for n in names]
    assert len({s.color for s in styles}) == 15
    assert len({(s.color, s.marker, s.linestyle) for s in styles}) == 15
    assert StyleBook(["wanda", "zeta"])("wanda") == StyleBook(["wanda", "alpha", "zeta"])("wanda")  # baselines first
    assert book("q") == StyleBook([])("q")                                        # layer types fixed


def test_quality_profile_counts_quality_not_just_speed():
    frame = prepare(_results())
    best, n = quality_profile(frame, eps=1e-3)
    assert n == 4 * len(LAYERS) * 3 + 3
    solved = best.groupby("solver").size()
    assert solved["sdpbb"] == n                      # optimal everywhere
    assert "wanda" not in solved                     # fast but 20 % above the optimum: never counts
    assert solved.get("bruteforce") == 4 * len(LAYERS)   # only run at d = 16
    assert np.isclose(best.loc[best["solver"] == "sdpbb", "seconds"].max(), 32 / 8)


def test_tmax_perplexity_panel_only_for_a_curve(tmp_path):
    """One prune run per setting at one cap is no curve: fig_tmax then has the objective panel only."""
    from reports.data import prepare_prune
    from reports.figures_quality import _prune_tmax

    full = prepare_prune(_prune())
    curve = _prune_tmax(full)
    assert curve is not None and set(curve["setting"]) == {"50 %"} and sorted(curve["T"]) == [1, 10, np.inf]
    single = full[(full["max_iters"] == 10) | (full["solver"] != "swap")]
    assert _prune_tmax(single) is None
    files = render_report(prepare(_results()), single, {"suite": "paper", "run": 1, "machine": {}}, tmp_path,
                          formats=("png",))
    assert any(f.name == "fig_tmax.png" for f in files)
    assert "no setting was pruned whole-model at two caps or more" in (tmp_path / "report.md").read_text()


def test_convergence_uses_whole_layers_when_the_run_has_them(tmp_path):
    """Crops converge in a few sweeps; mixed into a layer type's median they flattened its curve."""
    from reports.figures_runs import convergence_figure

    rows = _results()
    whole = [_row(f"L{b}", "wanda+swap", "swap", "refiner", 0.6, ws="wanda", layer=f"model.layers.{b}.self_attn.q_proj",
                  d=576, wso=1.0, crop=False, trace=[[0, 1.0], [0.1, 0.8], [0.2, 0.7], [0.3, 0.6]]) for b in range(2)]
    frame = prepare(pd.concat([rows, pd.DataFrame(whole)], ignore_index=True))
    out = convergence_figure(frame, StyleBook([]), tmp_path, ("png",))
    assert "on real layer instances" in out.caption and "2 tasks" in out.caption
    crops_only = convergence_figure(prepare(rows), StyleBook([]), tmp_path, ("png",))
    assert "on real crop instances" in crops_only.caption
