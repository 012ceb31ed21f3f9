"""Number and time formats shared by every table (Markdown, LaTeX, CLI tables, CSV export).

One rule per kind of quantity, so that a column never mixes notations:

* **Values** (objectives, perplexities, ratios): :data:`SIGNIFICANT` = 4 significant digits,
  plain notation for magnitudes in [1e-3, 1e5), scientific (``1.216e+07``) outside.
  A column is formatted with :func:`format_column`, which switches the *whole* column to
  scientific when any entry needs it.
* **Gaps** are shown in percent with 3 significant digits; 0 prints as ``0`` and positive
  values below 0.001 % as ``<0.001``.
* **Seconds**: 3 significant digits, plain notation (``0.0123``, ``4.21``, ``4210``).
* **Timestamps**: ISO 8601 in UTC, to the second (``2026-11-29T16:55:16Z``), never epoch floats.
* **Markdown tables** (:func:`markdown_table`) print these strings as they are.
"""

from __future__ import annotations

import datetime as dt
import math

SIGNIFICANT = 4
PLAIN_RANGE = (1e-3, 1e5)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def needs_scientific(x) -> bool:
    if _missing(x) or x == 0 or not math.isfinite(x):
        return False
    return not PLAIN_RANGE[0] <= abs(x) < PLAIN_RANGE[1]


def format_value(x, sig: int = SIGNIFICANT, scientific: bool | None = None) -> str:
    """``x`` with ``sig`` significant digits (see the module docstring); ``""`` when missing."""
    if _missing(x):
        return ""
    x = float(x)
    if not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if scientific if scientific is not None else needs_scientific(x):
        return f"{x:.{sig - 1}e}"
    decimals = max(sig - 1 - math.floor(math.log10(abs(x))), 0)
    return f"{round(x, decimals):.{decimals}f}"


def format_column(values, sig: int = SIGNIFICANT) -> list[str]:
    """Format a column with one notation for all its entries."""
    values = list(values)
    scientific = any(needs_scientific(v) for v in values if not _missing(v))
    return [format_value(v, sig, scientific) for v in values]


def format_percent(fraction, sig: int = 3) -> str:
    """A gap given as a fraction (0.0123) in percent (``1.23``)."""
    if _missing(fraction):
        return ""
    pct = 100.0 * float(fraction)
    if pct == 0:
        return "0"
    if 0 < pct < 1e-3:
        return "<0.001"
    return format_value(pct, sig, scientific=False) if abs(pct) < 1e5 else format_value(pct, sig)


def format_seconds(seconds, sig: int = 3) -> str:
    """Wall seconds with ``sig`` significant digits, plain notation."""
    if _missing(seconds):
        return ""
    return format_value(float(seconds), sig, scientific=False) if seconds >= 1e-6 else "0"


def format_timestamp(epoch) -> str:
    """Epoch seconds → ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    if _missing(epoch):
        return ""
    return dt.datetime.fromtimestamp(float(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def markdown_table(table) -> str:
    """The table's cells exactly as formatted (tabulate would re-parse "8.05e+05" and print 805000),
    numeric-looking columns right-aligned."""
    def numeric(value) -> bool:
        text = str(value).lstrip("<")
        try:
            float(text)
            return True
        except ValueError:
            return text == ""
    align = ["right" if all(numeric(v) for v in table[c]) else "left" for c in table.columns]
    return table.to_markdown(index=False, disable_numparse=True, colalign=align)
