"""Assemble a report — Markdown, a self-contained HTML page, figures (PNG + PDF/SVG) and LaTeX tables.

Input: plain DataFrames (results rows and prune rows, as :mod:`bench.reporting` reads them
from a results store) and a header dict (suite, run, commit, machine, versions). The
results rows go through :func:`prepare` once; :func:`render_report` takes the prepared
frame. Nothing here runs a solver or a model, or opens a store. Each figure and table
carries a caption that says what was run (suite, run, solvers, n).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from bench.paths import atomic_write_text
from reports import figures_quality, figures_runs, figures_time
from reports.data import expand_instance_info, prepare_prune, with_derived, with_gaps
from reports.formatting import markdown_table
from reports.latex import write_latex
from reports.style import FigureOutput, StyleBook
from reports.tables import gap_table, layer_reduction_table, perplexity_table, runtime_table
from reports.zero_shot_table import zero_shot_table

DEFAULT_FORMATS = ("png", "pdf")

SECTIONS = (
    ("gap", "1. Optimality gap per solver × instance family",
     "Gap = objective / reference − 1 in %; reference = best proven optimum, else best known objective."),
    ("warm", "2. Warm-start sensitivity and the 1-swap iteration cap", ""),
    ("runtime", "3. Runtime", "Shifted geometric mean of wall seconds per task (shift 1 s), relative to the fastest."),
    ("convergence", "4. 1-swap convergence", ""),
    ("reduction", "5. Per-layer error reduction vs Wanda", "Refiners warm-started from Wanda."),
    ("exact", "6. Exact solve time vs d", ""),
    ("ppl", "7. Perplexity", "Whole-model pruning runs: pruned perplexity per method and setting."),
    ("zero_shot", "8. Zero-shot accuracy",
     "lm-eval accuracy (acc, %) of the dense and the pruned models per task, and the mean over the tasks."),
)

TABLES = {  # section → (file stem, caption)
    "gap": ("table_gap", "Gap to the reference (best proven optimum, else best known) per solver and instance family."),
    "runtime": ("table_runtime", "Wall seconds per task: shifted geometric mean (shift 1 s), median and maximum."),
    "ppl": ("table_perplexity", "Perplexity after whole-model pruning per method and sparsity setting."),
    "reduction": ("table_layer_reduction", "Per-layer error reduction of refiners vs their warm start in whole-model runs."),
    "zero_shot": ("table_zero_shot", "Zero-shot accuracy (acc, %) per method and task after whole-model pruning, "
                                     "with the mean over the tasks."),
}


def prepare(results: pd.DataFrame) -> pd.DataFrame:
    """Expand metadata, compute references over all rows, then keep this run's rows.

    Rows with ``_this == False`` (other runs on the same instances) only inform the reference values.
    """
    frame = expand_instance_info(results)
    if frame.empty:
        return frame
    if "settings_json" not in frame:
        frame["settings_json"] = "{}"
    extra = frame["extra_json"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    frame["solver_kind"] = extra.map(lambda e: e.get("solver_kind", "unknown"))
    frame = with_derived(with_gaps(frame))
    if "_this" in frame:
        frame = frame[frame["_this"].astype(bool)].drop(columns="_this")
    return frame


def _figures(frame: pd.DataFrame, prune: pd.DataFrame, book: StyleBook, out: Path, formats) -> dict[str, list]:
    figs: dict[str, list[FigureOutput]] = {k: [] for k, _, _ in SECTIONS}
    jobs = []
    if not frame.empty:
        jobs += [("gap", lambda: figures_quality.gap_vs_d_figure(frame, book, out, formats)),
                 ("warm", lambda: figures_quality.warm_start_figure(frame, book, out, formats)),
                 ("warm", lambda: figures_quality.tmax_figure(frame, prune, book, out, formats)),
                 ("runtime", lambda: figures_time.quality_profile_figure(frame, book, out, formats)),
                 ("runtime", lambda: figures_time.runtime_vs_size_figure(frame, book, out, formats)),
                 ("convergence", lambda: figures_runs.convergence_figure(frame, book, out, formats)),
                 ("reduction", lambda: figures_runs.layer_reduction_figure(frame, book, out, formats)),
                 ("exact", lambda: figures_time.exact_time_figure(frame, book, out, formats))]
    jobs.append(("ppl", lambda: figures_runs.perplexity_figure(prune, book, out, formats)))
    for key, make in jobs:
        fig = make()
        if fig is not None:
            figs[key].append(fig)
    return figs


def render_report(frame: pd.DataFrame, prune: pd.DataFrame, header: dict, out_dir: str | Path,
                  formats=DEFAULT_FORMATS) -> list[Path]:
    """Write ``report.md``, ``report.html``, ``fig_*.{png,pdf,svg}`` and ``table_*.tex``; return the paths.

    ``frame`` is the output of :func:`prepare` (this run's rows with gaps to the references).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = prepare_prune(prune)
    names = list(frame["solver"].unique()) + list(frame["layer_type"].unique()) if not frame.empty else []
    names += list(runs["method"].unique()) + list(runs["setting"].unique()) if not runs.empty else []
    book = StyleBook(names)
    tables: dict[str, pd.DataFrame] = {}
    if not frame.empty:
        tables["gap"] = gap_table(frame)
        tables["runtime"] = runtime_table(frame)
    if not runs.empty:
        tables["ppl"] = perplexity_table(runs)
        tables["reduction"] = layer_reduction_table(runs)
        tables["zero_shot"] = zero_shot_table(runs)
    figs = _figures(frame, runs, book, out, formats)
    prefix = f"Suite {header.get('suite')} (run {header.get('run')})."
    tex = []
    for key, table in tables.items():
        if table is not None and not table.empty:
            stem, caption = TABLES[key]
            tex.append(write_latex(table, out / f"{stem}.tex", f"{prefix} {caption}", f"tab:{stem.removeprefix('table_')}"))
    atomic_write_text(out / "report.md", _markdown(header, tables, figs, prefix))
    atomic_write_text(out / "report.html", _html(header, tables, figs, prefix))
    return [out / "report.md", out / "report.html"] + [p for fs in figs.values() for f in fs for p in f.paths] + tex


def _header_items(header: dict) -> list[tuple[str, str, bool]]:
    """(label, value, value is code) for the report header."""
    machine = header.get("machine", {})
    versions = machine.get("versions", {})
    commit = f"{header.get('git_commit')}{' (dirty)' if header.get('git_dirty') else ''}"
    return [("suite", f"{header.get('suite')}, run {header.get('run')}, started {header.get('started')}", False),
            ("commit", commit, True),
            ("machine", f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('ram_gib')} GiB RAM, "
                        f"GPU: {machine.get('gpu') or 'none'}", False),
            ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()), False)]


def _markdown(header: dict, tables: dict, figs: dict, prefix: str) -> str:
    lines = ["# maskbench report", ""]
    lines += [f"- {label}: {'`' + value + '`' if code else value}" for label, value, code in _header_items(header)]
    lines.append("")
    number = 0
    for key, title, note in SECTIONS:
        lines += [f"## {title}", ""] + ([f"_{note}_", ""] if note else [])
        table = tables.get(key)
        if table is not None and not table.empty:
            lines += [markdown_table(table), ""]
        for fig in figs.get(key, []):
            number += 1
            lines += [f"![Figure {number}]({fig.paths[0].name})", "",
                      f"**Figure {number}.** {prefix} {fig.caption} Files: "
                      + ", ".join(f"`{p.name}`" for p in fig.paths) + ".", ""]
        if (table is None or table.empty) and not figs.get(key):
            lines += ["No results of this kind in this run.", ""]
    return "\n".join(lines)


def _html(header: dict, tables: dict, figs: dict, prefix: str) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>maskbench report</title><style>",
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f3f3f3}img{width:495px;max-width:100%}"
             "figure{margin:1.5em 0}figcaption{max-width:700px;font-size:90%}",
             "</style></head><body><h1>maskbench report</h1><ul>"]
    for label, value, code in _header_items(header):
        shown = f"<code>{html.escape(value)}</code>" if code else f"<strong>{html.escape(value)}</strong>" \
            if label == "suite" else html.escape(value)
        parts.append(f"<li>{html.escape(label)}: {shown}</li>")
    parts.append("</ul>")
    number = 0
    for key, title, note in SECTIONS:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if note:
            parts.append(f"<p><em>{html.escape(note)}</em></p>")
        table = tables.get(key)
        if table is not None and not table.empty:
            parts.append(table.to_html(border=0, index=False))
        for fig in figs.get(key, []):
            number += 1
            data = base64.b64encode(fig.paths[0].read_bytes()).decode()
            parts.append(f"<figure><img alt='Figure {number}' src='data:image/png;base64,{data}'>"
                         f"<figcaption><strong>Figure {number}.</strong> {html.escape(prefix + ' ' + fig.caption)}"
                         f"</figcaption></figure>")
        if (table is None or table.empty) and not figs.get(key):
            parts.append("<p>No results of this kind in this run.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
