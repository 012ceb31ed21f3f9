"""Assemble a report — Markdown plus a self-contained HTML page with PNG figures.

Input: plain DataFrames (results rows and prune rows, as :mod:`bench.reporting` reads them
from a results store) and a header dict (suite, run, commit, machine, versions). The
results rows go through :func:`prepare` once; :func:`render_report` takes the prepared
frame. Nothing here runs a solver or a model, or opens a store.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from reports import figures
from reports.data import expand_instance_info, with_gaps
from reports.tables import gap_table, layer_reduction_table, perplexity_table, runtime_table

SECTIONS = (
    ("gap", "1. Optimality gap per solver × instance family",
     "Gap = objective / reference − 1; reference = best proven optimum, else best known objective."),
    ("runtime", "2. Runtime", "Shifted geometric mean of wall seconds (shift 1 s), normalised to the fastest."),
    ("convergence", "3. 1-swap convergence", "Objective relative to the warm start, per sweep and per second."),
    ("reduction", "4. Per-layer error reduction vs Wanda", "Refiners warm-started from Wanda, by block and layer type."),
    ("exact", "5. Exact solve time vs d", "Wall time per instance of each exact backend."),
    ("ppl", "6. Perplexity", "Whole-model pruning runs: dense and pruned perplexity."),
)


def prepare(results: pd.DataFrame) -> pd.DataFrame:
    """Expand metadata, compute references over all rows, then keep this run's rows.

    Rows with ``_this == False`` (other runs on the same instances) only inform the reference values.
    """
    frame = expand_instance_info(results)
    if frame.empty:
        return frame
    extra = frame["extra_json"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    frame["solver_kind"] = extra.map(lambda e: e.get("solver_kind", "unknown"))
    frame = with_gaps(frame)
    if "_this" in frame:
        frame = frame[frame["_this"].astype(bool)].drop(columns="_this")
    return frame


def render_report(frame: pd.DataFrame, prune: pd.DataFrame, header: dict, out_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``report.html`` and ``fig_*.png`` into ``out_dir``; return the paths.

    ``frame`` is the output of :func:`prepare` (this run's rows with gaps to the references).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame] = {}
    figs: dict[str, list[Path]] = {k: [] for k, _, _ in SECTIONS}
    if not frame.empty:
        tables["gap"] = gap_table(frame)
        tables["runtime"] = runtime_table(frame)
        for key, fn, name in (("runtime", figures.profile_figure, "fig_performance_profile.png"),
                              ("convergence", figures.convergence_figure, "fig_swap_convergence.png"),
                              ("reduction", figures.layer_reduction_figure, "fig_layer_reduction.png"),
                              ("exact", figures.exact_time_figure, "fig_exact_time_vs_d.png")):
            path = fn(frame, out / name)
            if path is not None:
                figs[key].append(path)
    if prune is not None and not prune.empty:
        tables["ppl"] = perplexity_table(prune)
        tables["reduction"] = layer_reduction_table(prune)
    md = _markdown(header, tables, figs)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(header, tables, figs))
    written = [out / "report.md", out / "report.html"] + [p for ps in figs.values() for p in ps]
    return written


def _header_lines(header: dict) -> list[str]:
    machine = header.get("machine", {})
    versions = machine.get("versions", {})
    return [
        f"suite **{header.get('suite')}**, run {header.get('run')}, started {header.get('started')}",
        f"commit `{header.get('git_commit')}`{' (dirty)' if header.get('git_dirty') else ''}",
        f"machine: {machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('ram_gib')} GiB RAM, "
        f"GPU: {machine.get('gpu') or 'none'}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ]


def _markdown(header: dict, tables: dict, figs: dict) -> str:
    lines = ["# maskbench report", ""] + [f"- {x}" for x in _header_lines(header)] + [""]
    for key, title, note in SECTIONS:
        lines += [f"## {title}", "", f"_{note}_", ""]
        table = tables.get(key)
        if table is not None and not table.empty:
            lines += [table.to_markdown(), ""]
        for p in figs.get(key, []):
            lines += [f"![{title}]({p.name})", ""]
        if (table is None or table.empty) and not figs.get(key):
            lines += ["No results of this kind in this run.", ""]
    return "\n".join(lines)


def _html(header: dict, tables: dict, figs: dict) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>maskbench report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}img{max-width:100%}",
             "</style></head><body><h1>maskbench report</h1><ul>"]
    parts += [f"<li>{html.escape(x)}</li>" for x in _header_lines(header)]
    parts.append("</ul>")
    for key, title, note in SECTIONS:
        parts += [f"<h2>{html.escape(title)}</h2>", f"<p><em>{html.escape(note)}</em></p>"]
        table = tables.get(key)
        if table is not None and not table.empty:
            parts.append(table.to_html(border=0))
        for p in figs.get(key, []):
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
        if (table is None or table.empty) and not figs.get(key):
            parts.append("<p>No results of this kind in this run.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
