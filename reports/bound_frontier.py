"""The certified bound's frontier, from a plain data frame: bound quality against seconds per row.

Columns: ``layer_type``, ``newton_steps`` (the bound's budget), ``swap`` (1-swap loss of the row),
``bound`` (certified lower bound, same units), ``seconds`` (wall seconds of that row's bound).
Per layer type and budget: ``bound / 1-swap`` over the rows (ratio of sums), the certified gap
``S / B − 1`` of 1-swap it implies, and the median seconds per row. A bound above 1-swap's loss
never occurs (the bound is clipped to the start's loss); a certified gap of 15 % needs
``bound / 1-swap ≥ 0.87``.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.paths import atomic_save_figure  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def frontier(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (layer type, budget): rows, ``bound_over_swap``, ``certified_pct``, ``median_seconds``."""
    out = []
    for (layer_type, steps), part in frame.groupby(["layer_type", "newton_steps"], sort=True):
        swap, bound = part["swap"].sum(), part["bound"].sum()
        out.append({"layer_type": layer_type, "newton_steps": int(steps), "rows": len(part),
                    "bound_over_swap": bound / swap if swap > 0 else math.nan,
                    "certified_pct": 100.0 * (swap / bound - 1.0) if bound > 0 else math.inf,
                    "median_seconds": float(part["seconds"].median())})
    return pd.DataFrame(out)


def frontier_table(summary: pd.DataFrame) -> str:
    """Markdown: one row per layer type, one cell per budget ``bound/1-swap (certified gap, s per row)``."""
    budgets = sorted(summary["newton_steps"].unique())
    return _layer_table(summary, [(f"{b} Newton steps", lambda part, b=b: part["newton_steps"] == b) for b in budgets])


def _layer_table(summary: pd.DataFrame, columns) -> str:
    """Markdown: one row per layer type; per column ``(header, select)`` the first summary row that
    ``select(part)`` keeps, as ``bound/1-swap (certified gap, s per row)``, or ``—`` when none."""
    lines = ["| layer type | rows | " + " | ".join(header for header, _ in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for layer_type, part in summary.groupby("layer_type", sort=True):
        cells = []
        for _, select in columns:
            hit = part[select(part)]
            if hit.empty:
                cells.append("—")
                continue
            r = hit.iloc[0]
            cells.append(f"{r.bound_over_swap:.3f} ({r.certified_pct:.0f} %, {r.median_seconds:.1f} s)")
        lines.append(f"| {layer_type} | {int(part['rows'].max())} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frontier_figure(summary: pd.DataFrame, path: Path) -> Path | None:
    """Bound / 1-swap loss against median seconds per row (log axis), one line per layer type."""
    if summary.empty:
        return None
    fig, ax = plt.subplots(figsize=(8.0, 5.2), layout="constrained")
    for i, (layer_type, part) in enumerate(summary.groupby("layer_type", sort=True)):
        part = part.sort_values("newton_steps")
        ax.plot(part["median_seconds"], part["bound_over_swap"], marker=MARKERS[i % len(MARKERS)],
                linestyle="-", label=layer_type)
    ax.axhline(1 / 1.15, color="black", linestyle="--", linewidth=1)
    ax.text(0.01, 1 / 1.15, " certified gap of 1-swap ≤ 15 % above this line", transform=ax.get_yaxis_transform(),
            va="bottom", ha="left", fontsize=9)
    ax.set_ylim(top=max(0.95, float(summary["bound_over_swap"].max()) + 0.05))
    ax.set_xscale("log")
    ax.set_xlabel("median seconds per row (one thread; log axis)")
    ax.set_ylabel("certified bound / 1-swap loss (sum over rows)")
    budgets = ", ".join(str(b) for b in sorted(summary["newton_steps"].unique()))
    ax.set_title(f"Certified Shor bound on full rows: budgets of {budgets} Newton steps (left to right)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, frameon=False)
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path


def relaxation_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (layer type, relaxation, DNN budget): rows, ``bound_over_swap`` (ratio of sums),
    ``certified_pct``, ``median_seconds`` and the median per-row ratio ``median_ratio``."""
    out = []
    for (layer_type, relaxation, steps), part in frame.groupby(["layer_type", "relaxation", "dnn_steps"], sort=True):
        swap, bound = part["swap"].sum(), part["bound"].sum()
        ratios = (part["bound"] / part["swap"]).where(part["swap"] > 0)
        out.append({"layer_type": layer_type, "relaxation": relaxation, "dnn_steps": int(steps), "rows": len(part),
                    "bound_over_swap": bound / swap if swap > 0 else math.nan,
                    "median_ratio": float(ratios.median()),
                    "certified_pct": 100.0 * (swap / bound - 1.0) if bound > 0 else math.inf,
                    "median_seconds": float(part["seconds"].median())})
    return pd.DataFrame(out)


def _budget_label(relaxation: str, steps: int) -> str:
    if relaxation == "shor":
        return "Shor"
    return f"DNN ADMM {steps} iterations" if relaxation == "dnn-admm" else f"DNN {steps} steps"


def relaxation_table(summary: pd.DataFrame) -> str:
    """Markdown: one row per layer type, one cell per relaxation and budget
    ``bound/1-swap (certified gap, median s per row)``."""
    budgets = sorted({(_order(r.relaxation), r.dnn_steps, r.relaxation) for r in summary.itertuples()})
    return _layer_table(summary, [
        (_budget_label(rel, steps), lambda part, rel=rel, steps=steps: (part["relaxation"] == rel) & (part["dnn_steps"] == steps))
        for _, steps, rel in budgets])


def _order(relaxation: str) -> int:
    """Shor first, then the barrier DNN (``dnn``), then the splitting DNN (``dnn-admm``)."""
    return {"shor": 0, "dnn": 1}.get(relaxation, 2)


def relaxation_figure(summary: pd.DataFrame, path: Path) -> Path | None:
    """Bound / 1-swap loss against median seconds per row (log axis), one line per layer type from the
    Shor point through the DNN budgets."""
    if summary.empty:
        return None
    fig, ax = plt.subplots(figsize=(8.0, 5.2), layout="constrained")
    for i, (layer_type, part) in enumerate(summary.groupby("layer_type", sort=True)):
        part = part.assign(order=part["relaxation"].map(_order) * 10**9 + part["dnn_steps"]).sort_values("order")
        line, = ax.plot(part["median_seconds"], part["bound_over_swap"], marker=MARKERS[i % len(MARKERS)],
                        linestyle="-", label=layer_type)
        first = part.iloc[0]
        if first.relaxation == "shor":
            ax.plot([first.median_seconds], [first.bound_over_swap], marker=MARKERS[i % len(MARKERS)],
                    markerfacecolor="white", color=line.get_color(), linestyle="none")
    ax.axhline(1 / 1.15, color="black", linestyle="--", linewidth=1)
    ax.text(0.01, 1 / 1.15, " certified gap of 1-swap ≤ 15 % above this line", transform=ax.get_yaxis_transform(),
            va="bottom", ha="left", fontsize=9)
    ax.set_ylim(top=max(0.95, float(summary["bound_over_swap"].max()) + 0.05))
    ax.set_xscale("log")
    ax.set_xlabel("median seconds per row (one thread; log axis)")
    ax.set_ylabel("certified bound / 1-swap loss (sum over rows)")
    budgets = ", ".join(str(b) for b in sorted(summary.loc[summary["relaxation"] == "dnn", "dnn_steps"].unique()))
    admm = ", ".join(str(b) for b in sorted(summary.loc[summary["relaxation"] == "dnn-admm", "dnn_steps"].unique()))
    title = "Full rows: Shor (open marker)" + (f", barrier DNN ({budgets} Newton steps)" if budgets else "") + \
        (f", ADMM DNN ({admm} iterations)" if admm else "")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, frameon=False)
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path
