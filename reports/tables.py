"""Report tables from stored results (pure pandas), ready to print.

Every table is a frame of **strings** with plain string column labels and label columns (no
tuple index), formatted by :mod:`reports.formatting`: gaps in %, seconds with 3 significant
digits, perplexities with 2 decimals. :mod:`reports.latex` renders the same frames as LaTeX.
"""

from __future__ import annotations

import json

import pandas as pd

from reports.data import layer_type, shifted_geomean
from reports.formatting import format_percent, format_seconds, format_value

SETTING_ORDER = ("50 %", "60 %", "2:4", "4:8")


def _share(x: float) -> str:
    return f"{100 * x:.0f} %"


def gap_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Solver × instance family: median and max gap to the reference (%), share optimal, count, errors."""
    ok = frame[frame["status"] != "error"]
    if ok.empty:
        return pd.DataFrame()
    rows = []
    for (solver, family), g in ok.groupby(["solver", "family"], sort=True):
        errors = int(((frame["solver"] == solver) & (frame["family"] == family) & (frame["status"] == "error")).sum())
        rows.append({"solver": str(solver), "instances": str(family),
                     "median gap %": format_percent(g["gap_to_ref"].median()),
                     "max gap %": format_percent(g["gap_to_ref"].max()),
                     "optimal": _share(g["is_optimal"].mean()), "n": str(len(g)), "errors": str(errors)})
    return pd.DataFrame(rows)


def runtime_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per solver: shifted geometric mean of wall seconds (shift 1 s), relative to the fastest, median, max."""
    if frame.empty:
        return pd.DataFrame()
    sgm = frame.groupby("solver")["seconds"].apply(shifted_geomean).sort_values()
    fastest = max(float(sgm.min()), 1e-12)
    rows = []
    for solver, value in sgm.items():
        g = frame[frame["solver"] == solver]
        rows.append({"solver": str(solver), "shifted geomean s": format_seconds(value),
                     "× fastest": format_value(value / fastest, 3), "median s": format_seconds(g["seconds"].median()),
                     "max s": format_seconds(g["seconds"].max()), "tasks": str(len(g)),
                     "errors": str(int((g["status"] == "error").sum()))})
    return pd.DataFrame(rows)


def _setting_key(s: str) -> tuple:
    return (SETTING_ORDER.index(s) if s in SETTING_ORDER else len(SETTING_ORDER), s)


def perplexity_table(prune: pd.DataFrame) -> pd.DataFrame:
    """Method × setting (50 %, 60 %, 2:4 …) of pruned perplexity, with the dense model as first row.

    Expects :func:`reports.data.prepare_prune` output (a 1-swap iteration cap shows in the method
    name, ``wanda+swap[T=10]``). Several runs of one cell: the median.
    """
    if prune is None or prune.empty:
        return pd.DataFrame()
    runs = prune[prune["pruned_ppl"].notna()]
    if runs.empty:
        return pd.DataFrame()
    settings = sorted(runs["setting"].unique(), key=_setting_key)
    wide = runs.pivot_table(index="method", columns="setting", values="pruned_ppl", aggfunc="median")
    rows = [{"method": "dense", **{s: f"{runs['dense_ppl'].median():.2f}" for s in settings}}]
    for method, vals in wide.iterrows():
        rows.append({"method": str(method), **{s: ("" if pd.isna(vals.get(s)) else f"{vals[s]:.2f}") for s in settings}})
    table = pd.DataFrame(rows, columns=["method", *settings])
    seconds = runs.groupby("method")["seconds"].median()
    table["median s / run"] = [""] + [format_seconds(seconds.get(m)) for m in table["method"][1:]]
    return table


def layer_reduction_table(prune: pd.DataFrame) -> pd.DataFrame:
    """Per-layer error reduction (%) of each refiner prune run vs its warm start: min / median / max by layer type."""
    if prune is None or prune.empty:
        return pd.DataFrame()
    rows = []
    for _, run in prune.iterrows():
        for layer in json.loads(run.get("layers_json") or "[]"):
            ws, obj = layer.get("warm_start_objective"), layer.get("objective")
            if ws and obj is not None and ws > 0:
                setting = run["setting"] if "setting" in run else f"{run['pattern']} {run['sparsity']}"
                rows.append({"method": run["chain"], "setting": setting,
                             "layer type": layer_type(layer.get("name")), "reduction": 100 * (1 - obj / ws)})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    out = []
    for (method, setting, lt), g in df.groupby(["method", "setting", "layer type"], sort=True):
        out.append({"method": method, "setting": setting, "layer type": lt,
                    "min %": f"{g['reduction'].min():.2f}", "median %": f"{g['reduction'].median():.2f}",
                    "max %": f"{g['reduction'].max():.2f}", "layers": str(len(g))})
    return pd.DataFrame(out)
