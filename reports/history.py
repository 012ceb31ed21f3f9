"""Quality history tables and figure from :func:`bench.history.history_frame`'s plain frame.

Per run and solver configuration: the median, minimum and maximum of ``objective / reference``
over the configuration's instances in that run (``n`` of them), with the run's commit and
machine. The figure draws one line per configuration (the median gap ``ratio − 1`` per run, in
percent, on a symmetric-log axis so 0 is visible) with a min–max band; the x axis lists the runs
in time order, labelled ``#run commit``, and runs on different machines get different marker
fills, named in the legend. Like asv's history plots, for solution quality instead of time.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from bench.paths import atomic_save_figure  # noqa: E402

SUMMARY_COLUMNS = ("run_id", "started", "git_commit", "machine", "solver", "n", "median_ratio", "min_ratio",
                   "max_ratio", "errors")


def history_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, solver configuration), in run order."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    keys = ["run_id", "started", "git_commit", "machine", "solver"]
    grouped = frame.groupby(keys, sort=False)
    table = grouped["ratio"].agg(n="count", median_ratio="median", min_ratio="min", max_ratio="max")
    table["errors"] = grouped["status"].agg(lambda s: int((s == "error").sum()))
    table = table.reset_index()
    table["git_commit"] = table["git_commit"].astype(str).str[:10]
    return table[list(SUMMARY_COLUMNS)]


def history_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown, ratios as gaps in percent with four significant digits."""
    if table.empty:
        return "_no results in the store match_\n"
    shown = table.assign(**{c: [f"{100 * (v - 1):.4g} %" if pd.notna(v) else "–" for v in table[c]]
                            for c in ("median_ratio", "min_ratio", "max_ratio")})
    shown = shown.rename(columns={"median_ratio": "median gap", "min_ratio": "min gap", "max_ratio": "max gap",
                                  "run_id": "run", "git_commit": "commit"})
    return shown.to_markdown(index=False) + "\n"


def history_figure(table: pd.DataFrame, path: Path, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Median gap per run and configuration with min–max bands; returns the written files."""
    if table.empty:
        return []
    runs = table.drop_duplicates("run_id")[["run_id", "git_commit", "machine"]].reset_index(drop=True)
    position = {r: i for i, r in enumerate(runs["run_id"])}
    machines = list(dict.fromkeys(runs["machine"]))
    fills = ["full", "none", "left", "bottom"]
    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
    styles = ["-", "--", ":", "-."]
    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    handles: list[Line2D] = []
    for i, (solver, rows) in enumerate(table.groupby("solver", sort=True)):
        x = [position[r] for r in rows["run_id"]]
        low, mid, high = (100 * (rows[c].astype(float) - 1) for c in ("min_ratio", "median_ratio", "max_ratio"))
        colour = colours[i % len(colours)]
        ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, mid, linestyle=styles[i % len(styles)], color=colour)
        handles.append(Line2D([], [], color=colour, linestyle=styles[i % len(styles)], marker=markers[i % len(markers)],
                              label=solver))
        for machine, sub in rows.groupby("machine", sort=False):
            ax.plot([position[r] for r in sub["run_id"]], 100 * (sub["median_ratio"].astype(float) - 1),
                    linestyle="none", marker=markers[i % len(markers)], color=colour,
                    fillstyle=fills[machines.index(machine) % len(fills)], markersize=6)
    handles += [Line2D([], [], linestyle="none", marker="o", color="0.3", fillstyle=fills[j % len(fills)],
                       label=f"machine: {machine}") for j, machine in enumerate(machines)]
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"#{r} {c[:7]}" for r, c in zip(runs["run_id"], runs["git_commit"])], rotation=30,
                       ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(runs) - 0.5)
    ax.set_xlabel("run (time order) and commit")
    ax.set_ylabel("gap to reference (%)\nmedian, band = min–max")
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        atomic_save_figure(fig, out, dpi=200 if fmt == "png" else None)
        written.append(out)
    plt.close(fig)
    return written
