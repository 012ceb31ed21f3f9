"""Time figures: runtime per layer vs layer size, the quality-aware profile, exact time vs d.

Times are the stored ``seconds`` = build + solve wall seconds of one task (solver set-up and
solve, warm start included for refiners; process start, instance loading and the C++ kernel's
compilation are not in it). Same calling convention as :mod:`reports.figures_quality`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from reports.data import usable_rows
from reports.style import FigureOutput, StyleBook, figure, legend_below, plain_log_ticks, save

PROFILE_EPS = 1e-3
"""Quality-aware profile: an instance counts as solved once the objective is ≤ (1 + ε) · reference."""


def runtime_vs_size_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Median wall seconds per task vs the number of weights d_out · d_in, one line per solver."""
    rows = usable_rows(frame)
    rows = rows[~rows["has_settings"]]
    if rows.empty:
        return None
    rows = rows.assign(size=(rows["d_out"] * rows["d_in"]).astype(float))
    solvers = book.ordered(rows["solver"].unique())
    fig, axes = figure(height=3.2)
    ax = axes[0, 0]
    for solver in solvers:
        med = rows[rows["solver"] == solver].groupby("size")["seconds"].median().sort_index()
        ax.plot(med.index, med.clip(lower=1e-5).values, markersize=3, **book(solver).line())
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel("layer size d_out · d_in (weights)")
    ax.set_ylabel("wall time per layer (s, median)")
    legend_below(fig, [Line2D([], [], **book(s).line()) for s in solvers], solvers, ncol=3)
    caption = (f"Runtime per layer vs layer size: median wall seconds (build + solve) "
               f"of each solver configuration over the {rows['instance_id'].nunique()} instances of the run, "
               f"by number of weights d_out · d_in; log–log axes, times below 10 µs drawn at 10 µs.")
    return FigureOutput("fig_runtime_vs_size", save(fig, out, "fig_runtime_vs_size", formats), caption)


def quality_profile(frame: pd.DataFrame, eps: float = PROFILE_EPS) -> tuple[pd.DataFrame, int]:
    """Per solver, the sorted times at which it reached ``(1 + eps)·reference`` on an instance.

    Returns a frame (solver, seconds) of solved (instance, solver) pairs and the number of
    instances with a reference (the profile's denominator: instances a solver did not solve,
    or was not run on, count as unsolved).
    """
    rows = frame[frame["reference"].notna()]
    n = rows["instance_id"].nunique()
    ok = usable_rows(rows)
    ok = ok[~ok["has_settings"]]
    solved = ok[ok["objective"] <= (1 + eps) * ok["reference"] + 1e-12 * ok["reference"].abs()]
    best = solved.groupby(["solver", "instance_id"])["seconds"].min().reset_index()
    return best, n


def quality_profile_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Share of instances solved within ε of the reference by wall time t, one step curve per solver."""
    best, n = quality_profile(frame)
    if best.empty or n == 0:
        return None
    solvers = book.ordered(frame.loc[frame["reference"].notna() & ~frame["has_settings"], "solver"].unique())
    t = best["seconds"].clip(lower=1e-5)
    lo, hi = float(t.min()) / 1.5, float(t.max()) * 1.5
    fig, axes = figure(height=3.2)
    ax = axes[0, 0]
    for solver in solvers:
        times = np.sort(best.loc[best["solver"] == solver, "seconds"].clip(lower=1e-5).to_numpy())
        xs = np.concatenate([[lo], times, [hi]])
        ys = np.concatenate([[0.0], np.arange(1, len(times) + 1) / n, [len(times) / n]])
        ax.step(xs, ys, where="post", **book(solver).line(), markevery=list(range(1, len(xs) - 1)), markersize=2.5)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("wall time t per instance (s)")
    ax.set_ylabel(f"share solved within {100 * PROFILE_EPS:g} % of ref.")
    legend_below(fig, [Line2D([], [], **book(s).line()) for s in solvers], solvers, ncol=3)
    never = [s for s in solvers if not (best["solver"] == s).any()]
    caption = (f"Quality-aware profile over the {n} instances of the run: share of instances on which a solver "
               f"configuration returned an objective within {100 * PROFILE_EPS:g} % of the reference (best proven "
               f"optimum, else best known) in at most t seconds; instances it did not solve or was not run on count "
               f"as unsolved. The x axis spans every solved time."
               + (f" Never within {100 * PROFILE_EPS:g} % (the flat lines at 0): {', '.join(never)}." if never else ""))
    return FigureOutput("fig_performance_profile", save(fig, out, "fig_performance_profile", formats), caption)


def exact_time_figure(frame: pd.DataFrame, book: StyleBook, out, formats) -> FigureOutput | None:
    """Median (and range of) wall seconds of each exact backend vs d, one panel per pattern."""
    rows = frame[(frame["solver_kind"] == "exact") & (frame["status"] != "error") & ~frame["has_settings"]]
    if rows.empty:
        return None
    patterns = sorted(rows["pattern_kind"].unique(), key=lambda p: (p != "per-row", p))
    solvers = book.ordered(rows["solver"].unique())
    fig, axes = figure(height=0.9 + 1.6 * len(patterns), nrows=len(patterns))
    notes = []
    for ax, pat in zip(axes[:, 0], patterns):
        sub = rows[rows["pattern_kind"] == pat]
        ds = sorted(int(d) for d in sub["d_in"].unique())
        for k, solver in enumerate(solvers):
            g = sub[sub["solver"] == solver].groupby("d_in")["seconds"].agg(["median", "min", "max"]).sort_index()
            if g.empty:
                continue
            x = g.index.to_numpy(dtype=float) + (k - (len(solvers) - 1) / 2) * 0.12
            ax.errorbar(x, g["median"], yerr=[g["median"] - g["min"], g["max"] - g["median"]], capsize=1.5,
                        elinewidth=0.6, **book(solver).line())
            limited = sub[(sub["solver"] == solver) & (sub["status"] == "time_limit")]
            if int(g.index.max()) < max(ds):
                notes.append(f"{solver} ran up to d = {int(g.index.max())} ({pat})")
            if not limited.empty:
                notes.append(f"{solver} hit its time limit on {limited['instance_id'].nunique()} {pat} instances")
        ax.set_yscale("log")
        ax.set_xticks(ds, [str(d) for d in ds])
        ax.set_ylabel("wall time (s)")
        ax.set_title(f"pattern {pat} (n = {sub['instance_id'].nunique()})")
    axes[-1, 0].set_xlabel("row length d (input columns)")
    legend_below(fig, [Line2D([], [], **book(s).line()) for s in solvers], solvers, ncol=3)
    caption = ("Exact solve time per instance vs row length d, one panel per sparsity pattern: median with "
               "min–max bars over the instances of each d. "
               + ("; ".join(notes) + " (larger d not attempted: the suite limits these backends by max_d_in)."
                  if notes else "Every exact backend ran on every d."))
    return FigureOutput("fig_exact_time_vs_d", save(fig, out, "fig_exact_time_vs_d", formats), caption)
