"""Refinement and whole-model figures: 1-swap convergence, per-layer reduction vs Wanda, perplexity.

Same calling convention as :mod:`reports.figures_quality`; the perplexity figure reads the
prepared prune frame (:func:`reports.data.prepare_prune`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from reports.data import real_or_synthetic, usable_rows
from reports.style import FigureOutput, StyleBook, figure, legend_below, plain_log_ticks, save

SETTING_ORDER = ("50 %", "60 %", "2:4", "4:8")


def _relative_traces(rows: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """Per layer type, each task's objective / warm-start objective after 0, 1, 2 … sweeps."""
    out: dict[str, list[np.ndarray]] = {}
    for t, trace in zip(rows["layer_type"], rows["trace_json"]):
        arr = np.asarray(json.loads(trace) if isinstance(trace, str) else [], dtype=float)
        if arr.ndim == 2 and len(arr) >= 2 and arr[0, 1] > 0:
            out.setdefault(t, []).append(arr[:, 1] / arr[0, 1])
    return out


def convergence_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Median (and interquartile band of) objective / warm start per 1-swap sweep, per layer type."""
    rows = usable_rows(frame)
    rows = rows[(rows["solver_name"] == "swap") & ~rows["has_settings"]]
    if (rows["warm_start"] == "wanda").any():
        rows = rows[rows["warm_start"] == "wanda"]
    # whole layers when there are any: crops and synthetic rows converge within a few sweeps and
    # would flatten the medians of a layer type that mixes them with whole layers
    rows, origin = real_or_synthetic(rows)
    traces = _relative_traces(rows)
    if not traces:
        return None
    fig, axes = figure(height=2.8)
    ax = axes[0, 0]
    types = book.ordered(traces)
    longest = 0
    for t in types:
        n = max(len(a) for a in traces[t])
        longest = max(longest, n)
        padded = np.array([np.concatenate([a, np.full(n - len(a), a[-1])]) for a in traces[t]])
        q1, med, q3 = np.percentile(padded, [25, 50, 75], axis=0)
        st = book(t)
        ax.fill_between(np.arange(n), q1, q3, color=st.color, alpha=0.15, linewidth=0)
        ax.plot(np.arange(n), med, **st.line(), markersize=3, markevery=max(1, n // 8))
    ax.axhline(1.0, color="0.5", linewidth=0.7, linestyle=":")
    ax.annotate("warm start (Wanda)" if (rows["warm_start"] == "wanda").all() else "warm start", (0, 1.0),
                xytext=(4, 4), textcoords="offset points", fontsize=7, color="0.3")
    ax.set_xlim(-0.3, longest - 0.7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("1-swap sweep (0 = warm start; last = certified 1-swap optimal)")
    ax.set_ylabel("objective / warm-start objective")
    labels = [f"{t} (n = {len(traces[t])})" for t in types]
    legend_below(fig, [Line2D([], [], **book(t).line()) for t in types], labels, ncol=2, title="layer type")
    caption = (f"1-swap convergence on {origin} instances ({', '.join(sorted(rows['solver'].unique()))}, "
               f"{len(rows)} tasks): objective "
               f"relative to the warm start after each sweep over all rows, median per layer type with the "
               f"interquartile band; a finished task keeps its final value.")
    return FigureOutput("fig_swap_convergence", save(fig, out, "fig_swap_convergence", formats), caption)


def layer_reduction_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Layer error reduction (%) of each refiner over its Wanda warm start on real layers."""
    rows = usable_rows(frame)
    rows = rows[(rows["warm_start"] == "wanda") & rows["warm_start_objective"].gt(0) & (rows["origin"] != "synthetic")
                & ~rows["has_settings"]]
    if rows.empty:
        return None
    if (rows["origin"] == "real layer").any():
        rows = rows[rows["origin"] == "real layer"]
    rows = rows.assign(reduction=100 * (1 - rows["objective"] / rows["warm_start_objective"]))
    refiners = book.ordered(rows["solver"].unique())
    types = book.ordered(rows["layer_type"].unique())
    blocks = sorted(rows["block"].dropna().unique())
    by_block = len(blocks) >= 3
    fig, axes = figure(height=0.8 + 1.5 * len(refiners), nrows=len(refiners), sharex=True)
    for ax, solver in zip(axes[:, 0], refiners):
        sub = rows[rows["solver"] == solver]
        for k, t in enumerate(types):
            g = sub[sub["layer_type"] == t]
            if g.empty:
                continue
            if by_block:
                med = g.groupby("block")["reduction"].median().sort_index()
                ax.plot(med.index, med.values, markersize=3, **book(t).line())
            else:
                ax.plot(np.full(len(g), k, dtype=float), g["reduction"], alpha=0.5, markersize=3, **book(t).points())
                ax.plot([k - 0.3, k + 0.3], [g["reduction"].median()] * 2, color=book(t).color, linewidth=1.5)
        lo, hi = min(0.0, float(sub["reduction"].min())), max(0.0, float(sub["reduction"].max()))
        pad = 0.08 * (hi - lo) if hi > lo else 0.5
        ax.set_ylim(lo - pad, hi + pad)
        ax.axhline(0.0, color="0.5", linewidth=0.7, linestyle=":")
        ax.set_ylabel("reduction vs Wanda (%)")
        ax.set_title(f"{solver} (n = {len(sub)})")
    if by_block:
        if len(blocks) <= 12:
            axes[-1, 0].set_xticks(blocks, [str(int(b)) for b in blocks])
        else:
            axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1, 0].set_xlabel("transformer block")
        legend_below(fig, [Line2D([], [], **book(t).line()) for t in types], types, ncol=4, title="layer type")
    else:
        axes[-1, 0].set_xticks(range(len(types)), types)
        axes[-1, 0].set_xlabel(f"layer type (block{'s' if len(blocks) > 1 else ''} "
                               f"{', '.join(str(int(b)) for b in blocks)})")
    org = rows["origin"].iloc[0]
    caption = (f"Per-layer error reduction 100·(1 − f(refined) / f(Wanda)) of each refiner warm-started from Wanda "
               f"on {org} instances ({rows['instance_id'].nunique()} instances, "
               + ("median per transformer block and layer type)." if by_block else
                  "one marker per instance, bar = median; fewer than 3 blocks, so by layer type).")
               + " 0 (dotted) = no change.")
    return FigureOutput("fig_layer_reduction", save(fig, out, "fig_layer_reduction", formats), caption)


def perplexity_figure(prune: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Whole-model perplexity of every method per setting (50 %, 60 %, 2:4), dense as a line."""
    if prune is None or prune.empty:
        return None
    runs = prune[prune["pruned_ppl"].notna()]
    if runs.empty:
        return None
    settings = sorted(runs["setting"].unique(), key=lambda s: (SETTING_ORDER.index(s) if s in SETTING_ORDER else 99, s))
    methods = book.ordered(runs["method"].unique())
    fig, axes = figure(height=3.0)
    ax = axes[0, 0]
    width = 0.8
    for k, m in enumerate(methods):
        g = runs[runs["method"] == m].groupby("setting")["pruned_ppl"].median()
        off = -width / 2 + width * (k + 0.5) / len(methods)
        ax.plot([settings.index(s) + off for s in g.index], g.values, **book(m).points(), markersize=4.5)
    dense = runs["dense_ppl"].dropna().unique()
    if len(dense):
        ax.axhline(float(np.median(dense)), color="0.3", linewidth=0.9, linestyle="--")
        ax.annotate(f"dense {np.median(dense):.2f}", (1.0, float(np.median(dense))), xycoords=("axes fraction", "data"),
                    xytext=(-2, 3), textcoords="offset points", ha="right", fontsize=7, color="0.3")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    ax.set_xticks(range(len(settings)), settings)
    ax.set_xlim(-0.6, len(settings) - 0.4)
    for x in range(len(settings) - 1):
        ax.axvline(x + 0.5, color="0.85", linewidth=0.6)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("sparsity setting (per-row share pruned, or N:M)")
    ax.set_ylabel("perplexity (held-out)")
    legend_below(fig, [Line2D([], [], **book(m).points()) for m in methods], methods, ncol=3)
    protocol = _protocol_text(runs)
    caption = (f"Whole-model perplexity after pruning every linear layer of {', '.join(sorted(runs['model'].unique()))} "
               f"sequentially with each method ({len(runs)} prune runs{protocol}); dashed: the dense model. Log y axis.")
    return FigureOutput("fig_perplexity", save(fig, out, "fig_perplexity", formats), caption)


def _protocol_text(runs: pd.DataFrame) -> str:
    try:
        p = json.loads(runs["protocol_json"].iloc[0])
    except (TypeError, ValueError, KeyError):
        return ""
    keys = [("nsamples", "calibration windows"), ("seqlen", "tokens each")]
    parts = [f"{p[k]} {label}" for k, label in keys if k in p]
    return ("; " + ", ".join(parts)) if parts else ""
