"""Derived quantities of stored results (pure pandas; no solver or model is run here).

* **Reference value** of an instance: the best proven optimum (lowest objective with status
  ``optimal``) over all given rows; otherwise the best known objective, flagged as not proven,
  together with the best (highest) lower bound.
* **Gap to reference** of a result: ``objective / reference − 1`` (0 when both are 0).
* **Layer type** from the instance's ``layer`` name: q, k, v, o, gate, up, down, fc1, fc2,
  … (the last dotted component with ``_proj`` removed); ``synthetic`` for generated instances.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd


def expand_instance_info(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the instance metadata (``instance_json``) as columns: d_in, d_out, family, layer …"""
    if frame.empty:
        return frame.copy()
    info = pd.DataFrame([json.loads(s) if isinstance(s, str) else {} for s in frame["instance_json"]],
                        index=frame.index)
    info = info[[c for c in info.columns if c not in frame.columns]]
    out = pd.concat([frame, info], axis=1)
    for col in ("d_in", "d_out"):
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce")
    out["family"] = out["family"] if "family" in out else "unknown"
    out["layer_type"] = [layer_type(x) for x in out.get("layer", pd.Series([None] * len(out), index=out.index))]
    out["block"] = [block_index(x) for x in out.get("layer", pd.Series([None] * len(out), index=out.index))]
    out["seconds"] = out["build_seconds"].fillna(0.0) + out["solve_seconds"].fillna(0.0)
    return out


def layer_type(name) -> str:
    if not isinstance(name, str) or not name:
        return "synthetic"
    last = name.split(".")[-1]
    return re.sub(r"_proj$", "", last)


def block_index(name) -> float:
    if not isinstance(name, str):
        return math.nan
    match = re.search(r"\.(\d+)\.", f".{name}.")
    return float(match.group(1)) if match else math.nan


def references(frame: pd.DataFrame) -> pd.DataFrame:
    """Per instance: ``reference``, ``proven`` (bool), ``best_bound``."""
    ok = frame[frame["status"] != "error"]
    rows = []
    for iid, grp in ok.groupby("instance_id"):
        opt = grp[grp["status"] == "optimal"]["objective"].dropna()
        objs = grp["objective"].dropna()
        bounds = grp["lower_bound"].dropna() if "lower_bound" in grp else pd.Series(dtype=float)
        ref = opt.min() if len(opt) else (objs.min() if len(objs) else math.nan)
        rows.append({"instance_id": iid, "reference": ref, "proven": bool(len(opt)),
                     "best_bound": bounds.max() if len(bounds) else math.nan})
    return pd.DataFrame(rows, columns=["instance_id", "reference", "proven", "best_bound"])


def with_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``reference``, ``proven``, ``gap_to_ref`` and ``is_optimal`` (within 1e-9 relative)."""
    out = frame.merge(references(frame), on="instance_id", how="left")
    ref, obj = out["reference"].astype(float), out["objective"].astype(float)
    gap = np.where(ref > 0, obj / ref.where(ref > 0, 1.0) - 1.0, np.where(obj <= 0, 0.0, np.inf))
    out["gap_to_ref"] = np.where(obj.isna(), np.nan, np.maximum(gap, 0.0))
    out["is_optimal"] = out["proven"].fillna(False).astype(bool) & (out["gap_to_ref"] <= 1e-9)
    return out


def shifted_geomean(values: pd.Series, shift: float = 1.0) -> float:
    """``exp(mean(log(t + shift))) − shift`` (the usual solver-benchmark average, shift 1 s)."""
    v = values.dropna().astype(float)
    return float(np.exp(np.log(v + shift).mean()) - shift) if len(v) else math.nan


def performance_profile(frame: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """Dolan–Moré profile on wall time: share of instances each solver finishes (no error)
    within ``τ ×`` the fastest solver's time on that instance."""
    ok = frame[frame["status"] != "error"]
    pivot = ok.pivot_table(index="instance_id", columns="solver", values="seconds", aggfunc="min")
    all_solvers = sorted(frame["solver"].unique())
    pivot = pivot.reindex(columns=all_solvers)
    best = pivot.min(axis=1).clip(lower=1e-6)
    ratios = pivot.div(best, axis=0)
    return pd.DataFrame({s: [(ratios[s] <= t).mean() for t in taus] for s in all_solvers}, index=taus)


def origin(info: dict) -> str:
    """``real layer`` (a whole model layer), ``real crop`` (rows × columns of one) or ``synthetic``."""
    if not isinstance(info, dict) or not info.get("layer"):
        return "synthetic"
    return "real crop" if "crop" in info else "real layer"


def usable_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows a figure may draw: not ``error`` and with an objective."""
    return frame[(frame["status"] != "error") & frame["objective"].notna()]


def real_or_synthetic(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Whole real layers if present, else real crops, else synthetic instances (and which)."""
    for name in ("real layer", "real crop", "synthetic"):
        sub = rows[rows["origin"] == name]
        if not sub.empty:
            return sub, name
    return rows.iloc[0:0], ""


def pattern_kind(pattern) -> str:
    """``per-row k=8`` → ``per-row``; ``2:4`` stays."""
    return str(pattern).split(" ")[0] if isinstance(pattern, str) else "unknown"


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``origin``, ``pattern_kind``, ``max_iters`` (from the settings; NaN when unset),
    ``warm_start_objective`` (from ``extra_json``) and ``ratio_to_wanda`` = objective / the plain
    ``wanda`` objective on the same instance (NaN where the instance has no Wanda result)."""
    if frame.empty:
        return frame
    out = frame.copy()
    infos = [json.loads(s) if isinstance(s, str) else {} for s in out["instance_json"]]
    out["origin"] = [origin(i) for i in infos]
    out["pattern_kind"] = [pattern_kind(i.get("pattern")) for i in infos]
    settings = out["settings_json"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    out["has_settings"] = settings.map(bool)
    out["max_iters"] = pd.to_numeric(settings.map(lambda s: s.get("max_iters")), errors="coerce")
    extra = out["extra_json"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    out["warm_start_objective"] = pd.to_numeric(extra.map(lambda e: e.get("warm_start_objective")), errors="coerce")
    wanda = out[(out["solver"] == "wanda") & (out["status"] != "error")].groupby("instance_id")["objective"].min()
    base = out["instance_id"].map(wanda).astype(float)
    out["ratio_to_wanda"] = np.where(base > 0, out["objective"].astype(float) / base.where(base > 0, 1.0), np.nan)
    return out


def prune_setting(pattern, sparsity) -> str:
    """``50 %`` / ``60 %`` for per-row pruning, the N:M pattern (``2:4``) otherwise."""
    kind = pattern_kind(pattern)
    if ":" in kind:
        return kind
    return f"{100 * float(sparsity):.0f} %" if sparsity == sparsity else kind


def prepare_prune(prune: pd.DataFrame | None) -> pd.DataFrame:
    """Prune rows plus ``method`` (the ``chain`` label that :func:`bench.reporting.prune_rows` gives each
    row, ``[T=…]`` appended for a 1-swap iteration cap), ``setting`` and ``max_iters`` (from the stored config)."""
    if prune is None or prune.empty:
        return pd.DataFrame()
    out = prune.copy()
    out["method"] = out["chain"]
    out["setting"] = [prune_setting(p, s) for p, s in zip(out["pattern"], out["sparsity"])]
    protocol = out["protocol_json"] if "protocol_json" in out else pd.Series([None] * len(out), index=out.index)
    configs = protocol.map(lambda s: json.loads(s).get("config", {}) if isinstance(s, str) and s else {})
    settings = configs.map(lambda c: c.get("settings") or {})
    out["has_settings"] = settings.map(bool)
    out["max_iters"] = pd.to_numeric(settings.map(lambda s: s.get("max_iters")), errors="coerce")
    out["method"] = [m if t != t else f"{m}[T={int(t)}]" for m, t in zip(out["method"], out["max_iters"])]
    for col in ("dense_ppl", "pruned_ppl", "seconds"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    return out
