"""Report figures (matplotlib, Agg backend). Each function returns the written PNG path, or
None when the results hold nothing to plot. Axis labels carry units."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.data import performance_profile  # noqa: E402

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 9, "figure.dpi": 110})


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def profile_figure(frame: pd.DataFrame, path: Path) -> Path | None:
    if frame.empty:
        return None
    taus = np.logspace(0, 3, 200)
    prof = performance_profile(frame, taus)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for solver in prof.columns:
        ax.step(taus, prof[solver], where="post", label=solver)
    ax.set_xscale("log")
    ax.set_xlabel("τ: wall time relative to the fastest solver on the instance (×)")
    ax.set_ylabel("share of instances finished within τ")
    ax.set_ylim(0, 1.02)
    ax.set_title("Performance profile (wall time)")
    ax.legend(loc="lower right", ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _traces(frame: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for _, row in frame.iterrows():
        trace = json.loads(row["trace_json"]) if isinstance(row.get("trace_json"), str) else []
        if len(trace) >= 2:
            arr = np.asarray(trace, dtype=float)
            out.append((row["layer_type"], arr[:, 0], arr[:, 1]))
    return out


def convergence_figure(frame: pd.DataFrame, path: Path, solver_prefix: str = "swap") -> Path | None:
    rows = frame[frame["solver_name"] == solver_prefix]
    traces = _traces(rows)
    if not traces:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    types = sorted({t for t, _, _ in traces})
    colors = {t: plt.cm.tab10(i % 10) for i, t in enumerate(types)}
    for t, secs, obj in traces[:200]:
        rel = obj / obj[0] if obj[0] > 0 else obj
        a1.plot(np.arange(len(rel)), rel, color=colors[t], alpha=0.5, lw=1)
        a2.plot(secs, rel, color=colors[t], alpha=0.5, lw=1)
    for ax, xl in ((a1, "iteration (sweeps over all rows)"), (a2, "elapsed time (s)")):
        ax.set_xlabel(xl)
        ax.set_ylabel("objective / warm-start objective")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colors[t], label=t) for t in types]
    a2.legend(handles=handles, title="layer type", loc="upper right")
    fig.suptitle("1-swap convergence")
    return _save(fig, path)


def layer_reduction_figure(frame: pd.DataFrame, path: Path) -> Path | None:
    """Error reduction vs the Wanda warm start by block and layer type (refiners started from wanda)."""
    rows = frame[(frame["warm_start"].fillna("") == "wanda") & frame["block"].notna() & (frame["status"] != "error")]
    if rows.empty:
        return None
    ws = rows["extra_json"].map(lambda s: json.loads(s).get("warm_start_objective") if isinstance(s, str) else None)
    rows = rows.assign(reduction=100 * (1 - rows["objective"] / ws.astype(float)))
    solvers = sorted(rows["solver"].unique())
    fig, axes = plt.subplots(1, len(solvers), figsize=(6 * len(solvers), 4.2), squeeze=False)
    for ax, solver in zip(axes[0], solvers):
        sub = rows[rows["solver"] == solver]
        for t, grp in sub.groupby("layer_type"):
            g = grp.groupby("block")["reduction"].median().sort_index()
            ax.plot(g.index, g.values, marker="o", label=t)
        ax.set_xlabel("transformer block index")
        ax.set_ylabel("layer error reduction vs Wanda (%)")
        ax.set_title(solver)
        ax.grid(alpha=0.3)
        ax.legend(title="layer type", ncol=2)
    return _save(fig, path)


def exact_time_figure(frame: pd.DataFrame, path: Path) -> Path | None:
    rows = frame[(frame["solver_kind"] == "exact") & (frame["status"] != "error")]
    if rows.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for solver, grp in rows.groupby("solver"):
        g = grp.groupby("d_in")["seconds"].agg(["median", "max"]).sort_index()
        ax.plot(g.index, g["median"], marker="o", label=f"{solver} (median)")
        ax.fill_between(g.index, g["median"], g["max"], alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("row length d (input columns)")
    ax.set_ylabel("wall time per instance (s)")
    ax.set_title("Exact solve time vs d (band: median to max)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _save(fig, path)
