"""Report tables from stored results (pure pandas)."""

from __future__ import annotations

import json

import pandas as pd

from reports.data import shifted_geomean


def gap_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Solver × instance family: median and max gap to the reference (%), share optimal, count."""
    ok = frame[frame["status"] != "error"]
    if ok.empty:
        return pd.DataFrame()
    grouped = ok.groupby(["solver", "family"])
    table = pd.DataFrame({
        "median gap %": grouped["gap_to_ref"].median() * 100,
        "max gap %": grouped["gap_to_ref"].max() * 100,
        "share optimal": grouped["is_optimal"].mean(),
        "instances": grouped.size(),
    })
    errors = frame[frame["status"] == "error"].groupby(["solver", "family"]).size()
    table["errors"] = errors.reindex(table.index).fillna(0).astype(int)
    return table.round({"median gap %": 3, "max gap %": 3, "share optimal": 3})


def runtime_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Shifted geometric mean of wall seconds (shift 1 s) per solver, normalised to the fastest."""
    if frame.empty:
        return pd.DataFrame()
    sgm = frame.groupby("solver")["seconds"].apply(shifted_geomean)
    table = pd.DataFrame({"shifted geomean s": sgm, "relative to fastest": sgm / max(sgm.min(), 1e-12),
                          "tasks": frame.groupby("solver").size(),
                          "errors": frame[frame["status"] == "error"].groupby("solver").size()})
    table["errors"] = table["errors"].fillna(0).astype(int)
    return table.sort_values("shifted geomean s").round(4)


def perplexity_table(prune: pd.DataFrame) -> pd.DataFrame:
    """Model × pattern × sparsity × method: dense and pruned perplexity, seconds."""
    if prune.empty:
        return pd.DataFrame()
    method = [f"{w}+{s}" if isinstance(w, str) and w else s for s, w in zip(prune["solver"], prune["warm_start"])]
    table = prune.assign(method=method)[["model", "pattern", "sparsity", "method", "dense_ppl", "pruned_ppl",
                                         "seconds"]]
    return table.sort_values(["model", "pattern", "sparsity", "pruned_ppl"]).reset_index(drop=True).round(3)


def layer_reduction_table(prune: pd.DataFrame) -> pd.DataFrame:
    """Per-layer error reduction of each prune run vs its warm start: min / median / max by layer type."""
    from reports.data import layer_type

    rows = []
    for _, run in prune.iterrows():
        for layer in json.loads(run["layers_json"] or "[]"):
            ws, obj = layer.get("warm_start_objective"), layer.get("objective")
            if ws and obj is not None and ws > 0:
                rows.append({"method": f"{run['warm_start']}+{run['solver']}", "sparsity": run["sparsity"],
                             "pattern": run["pattern"], "layer_type": layer_type(layer.get("name")),
                             "reduction %": 100 * (1 - obj / ws)})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return df.groupby(["method", "pattern", "sparsity", "layer_type"])["reduction %"].agg(
        ["min", "median", "max", "count"]).round(2)
