"""The gap bracket of 1-swap, from a plain data frame (one row per output row of a layer).

Columns: ``layer_type``, ``block``, ``swap``, ``lns``, ``bound`` (losses / certified lower bound,
same units). For a set of rows with totals ``S`` (1-swap), ``L`` (lns, any feasible mask),
``B`` (certified bound) and the unknown optimum ``O`` (``B ≤ O ≤ L ≤ S``):

    S / L − 1  ≤  S / O − 1  ≤  S / B − 1,

i.e. 1-swap's true relative excess over the optimum lies in ``[found, certified]``. The lower
end is an improvement actually found; the upper end is proved.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.paths import atomic_save_figure  # noqa: E402


def bracket(frame: pd.DataFrame) -> pd.DataFrame:
    """Per layer type: rows, blocks, totals and the bracket ends in % (``found_pct ≤ certified_pct``)."""
    out = []
    for layer_type, part in frame.groupby("layer_type", sort=True):
        swap, lns, bound = part["swap"].sum(), part["lns"].sum(), part["bound"].sum()
        out.append({"layer_type": layer_type, "rows": len(part),
                    "blocks": ",".join(sorted({str(b) for b in part["block"]}, key=lambda b: (len(b), b))),
                    "swap": swap, "lns": lns, "bound": bound,
                    "found_pct": 100.0 * (swap / lns - 1.0) if lns > 0 else 0.0,
                    "certified_pct": 100.0 * (swap / bound - 1.0) if bound > 0 else math.inf,
                    "bound_over_swap": bound / swap if swap > 0 else math.nan})
    return pd.DataFrame(out)


def bracket_table(summary: pd.DataFrame) -> str:
    """Markdown table of :func:`bracket`."""
    lines = ["| layer type | rows (blocks) | 1-swap excess found by lns | certified 1-swap excess | bound / 1-swap |",
             "|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.layer_type} | {r.rows} ({r.blocks}) | {r.found_pct:.2f} % | "
                     f"{r.certified_pct:.1f} % | {r.bound_over_swap:.3f} |")
    return "\n".join(lines)


def bracket_figure(summary: pd.DataFrame, path: Path) -> Path | None:
    """One horizontal interval per layer type: [found, certified] excess of 1-swap over the optimum (%)."""
    if summary.empty:
        return None
    fig, ax = plt.subplots(figsize=(9.0, 0.5 * len(summary) + 2.2), layout="constrained")
    for i, r in enumerate(summary.itertuples()):
        hi = r.certified_pct if math.isfinite(r.certified_pct) else 100.0
        ax.plot([r.found_pct, hi], [i, i], color="tab:blue", linewidth=6, alpha=0.35, solid_capstyle="butt")
        ax.plot(r.found_pct, i, "o", color="tab:green", label="found by lns (true excess ≥)" if i == 0 else None)
        ax.plot(hi, i, "|", color="tab:red", markersize=16, markeredgewidth=2.5,
                label="certified by the bound (true excess ≤)" if i == 0 else None)
        ax.annotate(f"{r.found_pct:.2f} – {r.certified_pct:.0f} %", (hi, i), xytext=(6, -4),
                    textcoords="offset points", fontsize=9)
    ax.set_yticks(range(len(summary)), [f"{r.layer_type} (block {r.blocks}, {r.rows} rows)"
                                         for r in summary.itertuples()])
    ax.set_xscale("symlog", linthresh=0.1, linscale=0.5)  # both ends readable: ~1 % found, ~30 % certified
    ax.set_xlim(0, max(summary["certified_pct"].replace(math.inf, 100.0).max() * 8.0, 1.0))
    ax.set_xlabel("1-swap loss above the optimum, % (symlog axis; true value lies in the bar)")
    ax.set_title("Gap bracket of 1-swap (wanda+swap), sampled full rows")
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(len(summary) - 0.4, -0.6)
    fig.legend(loc="outside lower center", ncol=2, frameon=False)   # constrained layout makes room below
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path
