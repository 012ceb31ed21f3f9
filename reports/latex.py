"""LaTeX (booktabs) versions of the report tables: ``\\toprule``/``\\midrule``/``\\bottomrule``,
label columns left-aligned, numbers right-aligned, special characters escaped. Needs
``\\usepackage{booktabs}`` in the paper. Input: the string frames of :mod:`reports.tables`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

LABEL_COLUMNS = ("solver", "instances", "method", "setting", "layer type")
SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           "<": r"\textless{}", ">": r"\textgreater{}", "×": r"\ensuremath{\times}", "−": "-",
           "≤": r"\ensuremath{\leq}", "∞": r"\ensuremath{\infty}"}
"""LaTeX's ten special characters, plus the non-ASCII symbols the report tables use."""


def escape(text: str) -> str:
    """Plain text → LaTeX text (the characters of :data:`SPECIAL` replaced)."""
    return "".join(SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """One ``table`` environment with a booktabs ``tabular``."""
    align = "".join("l" if c in LABEL_COLUMNS else "r" for c in table.columns)
    table = table.rename(columns=escape).map(escape)
    styler = table.style.hide(axis="index")
    return styler.to_latex(column_format=align, hrules=True, caption=escape(caption), label=label,
                           position="htbp", position_float="centering")


def write_latex(table: pd.DataFrame, path: Path, caption: str, label: str) -> Path:
    path = Path(path)
    from bench.paths import atomic_write_text

    atomic_write_text(path, to_latex(table, caption, label))
    return path
