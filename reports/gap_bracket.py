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


RELAXATION_ORDER = ("shor", "dnn")
"""Weaker first: the order of the relaxations' columns and of their figure marks."""


def bracket_by_relaxation(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`bracket` per relaxation (column ``relaxation`` of ``frame``, e.g. the records of one run with
    ``shor`` and one with ``dnn`` on the same rows), with the median bound seconds per row of each."""
    parts = []
    for relaxation, part in frame.groupby("relaxation", sort=False):
        one = bracket(part)
        one.insert(1, "relaxation", relaxation)
        seconds = part.groupby("layer_type")["bound_seconds"].median() if "bound_seconds" in part else None
        one["bound_seconds"] = seconds.reindex(one["layer_type"]).to_numpy() if seconds is not None else math.nan
        parts.append(one)
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    rank = {r: i for i, r in enumerate(RELAXATION_ORDER)}
    out["_rank"] = out["relaxation"].map(rank).fillna(len(rank))
    return out.sort_values(["layer_type", "_rank"], ignore_index=True).drop(columns="_rank")


def relaxation_table(by_relaxation: pd.DataFrame) -> str:
    """Markdown table of :func:`bracket_by_relaxation`: one line per layer type, the lns end (the larger of
    the runs' found excess: each is a mask found) and each relaxation's certified end, bound / 1-swap and
    median seconds per row."""
    names = [r for r in RELAXATION_ORDER if r in set(by_relaxation["relaxation"])]
    names += sorted(set(by_relaxation["relaxation"]) - set(names))
    head = ["layer type", "rows (blocks)", "1-swap excess found by lns"]
    head += [f"certified excess, {n}" for n in names] + [f"bound / 1-swap, {n}" for n in names]
    head += [f"s / row, {n}" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer_type, part in by_relaxation.groupby("layer_type", sort=True):
        part = part.set_index("relaxation")
        cells = [layer_type, f"{int(part['rows'].max())} ({part['blocks'].iloc[0]})", f"{part['found_pct'].max():.2f} %"]
        cells += [f"{part.loc[n, 'certified_pct']:.1f} %" if n in part.index else "—" for n in names]
        cells += [f"{part.loc[n, 'bound_over_swap']:.3f}" if n in part.index else "—" for n in names]
        cells += [f"{part.loc[n, 'bound_seconds']:.1f}" if n in part.index and math.isfinite(part.loc[n, "bound_seconds"])
                  else "—" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bracket_figure(summary: pd.DataFrame, path: Path, weaker: pd.DataFrame | None = None,
                   bound_name: str = "", weaker_name: str = "weaker") -> Path | None:
    """One horizontal interval per layer type: [found, certified] excess of 1-swap over the optimum (%);
    with ``weaker`` (a :func:`bracket` of the same rows by a weaker bound) its certified end is marked too,
    and written after the bracket's ends."""
    if summary.empty:
        return None
    fig, ax = plt.subplots(figsize=(9.0, 0.5 * len(summary) + 2.2), layout="constrained")
    for i, r in enumerate(summary.itertuples()):
        hi = r.certified_pct if math.isfinite(r.certified_pct) else 100.0
        ax.plot([r.found_pct, hi], [i, i], color="tab:blue", linewidth=6, alpha=0.35, solid_capstyle="butt")
        ax.plot(r.found_pct, i, "o", color="tab:green", label="found by lns (true excess ≥)" if i == 0 else None)
        ax.plot(hi, i, "|", color="tab:red", markersize=16, markeredgewidth=2.5,
                label=f"certified by the {bound_name + ' ' if bound_name else ''}bound (true excess ≤)" if i == 0 else None)
        text, right = f"{r.found_pct:.2f} – {r.certified_pct:.0f} %", hi
        old = None if weaker is None else weaker.loc[weaker["layer_type"] == r.layer_type, "certified_pct"]
        if old is not None and len(old) and math.isfinite(float(old.iloc[0])):
            ax.plot(float(old.iloc[0]), i, "|", color="0.45", markersize=12, markeredgewidth=2.0,
                    label=f"certified by the {weaker_name} bound" if i == 0 else None)
            text = f"{text}  ({weaker_name}: {float(old.iloc[0]):.0f} %)"
            right = max(hi, float(old.iloc[0]))
        ax.annotate(text, (right, i), xytext=(7, -4), textcoords="offset points", fontsize=9)
    ax.set_yticks(range(len(summary)), [f"{r.layer_type} (block {r.blocks}, {r.rows} rows)"
                                         for r in summary.itertuples()])
    ax.set_xscale("symlog", linthresh=0.1, linscale=0.5)  # both ends readable: ~1 % found, ~30 % certified
    ends = summary["certified_pct"].replace(math.inf, 100.0).max()
    if weaker is not None and not weaker.empty:
        ends = max(ends, weaker["certified_pct"].replace(math.inf, 100.0).max())
    ax.set_xlim(0, max(ends * (8.0 if weaker is None else 25.0), 1.0))   # room for the ends' text
    ax.set_xlabel("1-swap loss above the optimum, % (symlog axis; true value lies in the bar)")
    ax.set_title("Gap bracket of 1-swap (wanda+swap), sampled full rows")
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(len(summary) - 0.4, -0.6)
    # constrained layout makes room below
    fig.legend(loc="outside lower center", ncol=3 if weaker is not None else 2, frameon=False)
    atomic_save_figure(fig, path)
    plt.close(fig)
    return path
