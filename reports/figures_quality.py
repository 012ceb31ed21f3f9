"""Solution-quality figures: optimality gap vs d, warm-start sensitivity, T_max ablation.

Each function takes the prepared results frame (see :func:`reports.build.prepare`), a
:class:`~reports.style.StyleBook`, the output folder and the formats, and returns a
:class:`~reports.style.FigureOutput` (paths + caption) or ``None`` when the results hold nothing
to plot. Objectives are compared per instance, so instances of different scale can be pooled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from reports.data import real_or_synthetic, usable_rows
from reports.style import FigureOutput, StyleBook, figure, legend_below, plain_log_ticks, save

HEURISTIC_KINDS = ("baseline", "refiner")
WARM_STARTS = ("magnitude", "wanda", "ria", "sparsegpt")
VARIANTS = (("alone", ""), ("+1-swap", "+swap"), ("+DSnoT", "+dsnot"))
T_GRID = (1, 2, 5, 10, 25, 50, 100)
GAP_FLOOR_PCT = 1e-3
"""symlog threshold of the gap axis (%): gaps below it are drawn on the linear part around 0."""


def gap_vs_d_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Gap to the proven optimum (%) of every heuristic per instance, by row length d."""
    rows = usable_rows(frame)
    rows = rows[rows["solver_kind"].isin(HEURISTIC_KINDS) & rows["proven"].fillna(False).astype(bool)
                & ~rows["has_settings"]]
    origins = [o for o in ("real crop", "real layer", "synthetic") if (rows["origin"] == o).any()]
    if not origins:
        return None
    solvers = book.ordered(rows["solver"].unique())
    fig, axes = figure(height=0.9 + 1.55 * len(origins), nrows=len(origins))
    width = 0.8
    for ax, org in zip(axes[:, 0], origins):
        sub = rows[rows["origin"] == org]
        ds = sorted(int(d) for d in sub["d_in"].unique())
        pos = {d: i for i, d in enumerate(ds)}
        for k, solver in enumerate(solvers):
            g = sub[sub["solver"] == solver]
            if g.empty:
                continue
            off = -width / 2 + width * (k + 0.5) / len(solvers)
            st = book(solver)
            ax.plot(g["d_in"].map(pos) + off, 100 * g["gap_to_ref"], color=st.color, marker=st.marker,
                    linestyle="none", markersize=2.2, alpha=0.45, markeredgewidth=0)
            med = 100 * g.groupby("d_in")["gap_to_ref"].median()
            ax.plot([pos[int(d)] + off for d in med.index], med.values, markerfacecolor="white", markersize=3.8,
                    linewidth=0.8, **st.line())
        ax.set_yscale("symlog", linthresh=GAP_FLOOR_PCT * 10, linscale=0.5)
        ax.set_ylim(bottom=-GAP_FLOOR_PCT)
        ax.set_xticks(range(len(ds)), [str(d) for d in ds])
        ax.set_xlim(-0.6, len(ds) - 0.4)
        ax.set_ylabel("gap to optimum (%)")
        ax.set_title(f"{org} instances (n = {sub['instance_id'].nunique()})")
    axes[-1, 0].set_xlabel("row length d (input columns)")
    handles = [Line2D([], [], markerfacecolor="white", **book(s).line()) for s in solvers]
    legend_below(fig, handles, solvers, ncol=3)
    n = rows["instance_id"].nunique()
    caption = (f"Gap to the proven optimum, objective / optimum − 1 in %, of every heuristic configuration "
               f"({', '.join(solvers)}) on the {n} instances with a proven optimum, by row length d; one small "
               f"marker per instance, open markers joined by lines are medians. Symmetric-log y axis (linear "
               f"below {GAP_FLOOR_PCT * 10:g} %).")
    return FigureOutput("fig_gap_vs_d", save(fig, out, "fig_gap_vs_d", formats), caption)


def warm_start_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Layer error relative to Wanda of each warm start, alone, + 1-swap and + DSnoT, per layer type."""
    rows = usable_rows(frame)
    labels = {f"{w}{suffix}": (i, j) for i, w in enumerate(WARM_STARTS) for j, (_, suffix) in enumerate(VARIANTS)}
    rows = rows[rows["solver"].isin(labels) & ~rows["has_settings"] & rows["ratio_to_wanda"].notna()]
    rows, org = real_or_synthetic(rows)
    if rows.empty or rows["solver"].nunique() < 2:
        return None
    present = sorted({labels[s] for s in rows["solver"].unique()})
    groups = sorted({i for i, _ in present})
    xpos, centres = {}, []
    for i in groups:
        members = [(i, j) for (gi, j) in present if gi == i]
        start = len(xpos) + len(centres)        # one empty slot between groups
        for k, (_, j) in enumerate(members):
            xpos[f"{WARM_STARTS[i]}{VARIANTS[j][1]}"] = start + k
        centres.append(start + (len(members) - 1) / 2)
    types = book.ordered(rows["layer_type"].unique())
    fig, axes = figure(height=2.9)
    ax = axes[0, 0]
    ax.axhline(1.0, color="0.5", linewidth=0.7, linestyle=":")
    nt = len(types)
    for k, t in enumerate(types):
        med = rows[rows["layer_type"] == t].groupby("solver")["ratio_to_wanda"].median()
        off = (k - (nt - 1) / 2) * 0.5 / max(nt, 1)
        ax.plot([xpos[s] + off for s in med.index], med.values, **book(t).points(), markersize=3.5)
    ticks = sorted(xpos.items(), key=lambda kv: kv[1])
    ax.set_xticks([p for _, p in ticks], [VARIANTS[labels[s][1]][0] for s, _ in ticks], rotation=90)
    ax.grid(axis="x", visible=False)
    groups_axis = ax.secondary_xaxis(location="bottom")
    groups_axis.set_xticks(centres, [f"{WARM_STARTS[i]}" for i in groups])
    groups_axis.tick_params(length=0, pad=44)
    groups_axis.spines["bottom"].set_visible(False)
    groups_axis.set_xlabel("warm start")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    ax.set_ylabel("layer error / Wanda's (median)")
    handles = [Line2D([], [], **book(t).points()) for t in types]
    legend_below(fig, handles, types, ncol=min(len(types), 4), title="layer type")
    caption = (f"Warm-start sensitivity on {org} instances (n = {rows['instance_id'].nunique()}): layer error "
               f"f(M) relative to Wanda's on the same instance (median per layer type; 1 = Wanda, dotted) for each "
               f"warm start alone, refined by 1-swap and by DSnoT. Log y axis.")
    return FigureOutput("fig_warm_start", save(fig, out, "fig_warm_start", formats), caption)


def _t_label(t: float) -> str:
    return "∞" if not np.isfinite(t) else str(int(t))


def tmax_figure(frame: pd.DataFrame, prune: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Objective (relative to Wanda) and, where prune runs exist, perplexity vs the 1-swap iteration cap."""
    rows = usable_rows(frame)
    rows = rows[(rows["solver_name"] == "swap") & (rows["warm_start"] == "wanda") & rows["ratio_to_wanda"].notna()]
    capped = rows[rows["max_iters"].notna()]
    if capped.empty:
        return None
    rows = rows[rows["max_iters"].notna() | ~rows["has_settings"]].assign(T=rows["max_iters"].fillna(np.inf))
    rows, org = real_or_synthetic(rows)
    ppl = _prune_tmax(prune)
    npanel = 1 + (ppl is not None)
    fig, axes = figure(height=1.0 + 1.5 * npanel, nrows=npanel, sharex=True)
    ts = sorted(rows["T"].unique())
    pos = {t: i for i, t in enumerate(ts)}
    ax = axes[0, 0]
    types = book.ordered(rows["layer_type"].unique())
    for t in types:
        med = rows[rows["layer_type"] == t].groupby("T")["ratio_to_wanda"].median()
        ax.plot([pos[x] for x in med.index], med.values, **book(t).line())
    ax.set_ylabel("layer error / Wanda's")
    if ppl is not None:
        ax2 = axes[1, 0]
        for setting, g in ppl.groupby("setting"):
            g = g[g["T"].isin(pos)].groupby("T")["pruned_ppl"].median().sort_index()
            ax2.plot([pos[x] for x in g.index], g.values, **book(setting).line(), label=setting)
        ax2.set_ylabel("perplexity")
        ax2.legend(title="setting", loc="best")
    axes[-1, 0].set_xticks(range(len(ts)), [_t_label(t) for t in ts])
    axes[-1, 0].set_xlabel("1-swap iteration cap T_max (∞ = to convergence)")
    legend_below(fig, [Line2D([], [], **book(t).line()) for t in types], types, ncol=min(len(types), 4),
                 title="layer type")
    caption = (f"T_max ablation of Wanda + 1-swap on {org} instances (n = {rows['instance_id'].nunique()}): "
               f"median layer error relative to Wanda per layer type vs the iteration cap"
               + ("; lower panel: whole-model perplexity of the prune runs with that cap." if ppl is not None
                  else "; no setting was pruned whole-model at two caps or more in this run."))
    return FigureOutput("fig_tmax", save(fig, out, "fig_tmax", formats), caption)


def _prune_tmax(prune: pd.DataFrame | None) -> pd.DataFrame | None:
    """Prune runs of wanda+swap with their cap T (∞ when unset), for the settings pruned at two caps or more.

    None when no setting has two caps: a single cap per setting is no curve (the perplexity
    figure shows those runs).
    """
    if prune is None or prune.empty or "max_iters" not in prune:
        return None
    runs = prune[(prune["solver"] == "swap") & (prune["warm_start"] == "wanda") & prune["pruned_ppl"].notna()]
    capped_settings = runs.loc[runs["max_iters"].notna(), "setting"].unique()
    runs = runs[runs["setting"].isin(capped_settings) & (runs["max_iters"].notna() | ~runs["has_settings"])]
    runs = runs.assign(T=runs["max_iters"].fillna(np.inf))
    caps = runs.groupby("setting")["T"].nunique()
    runs = runs[runs["setting"].isin(caps[caps >= 2].index)]
    return None if runs.empty else runs
