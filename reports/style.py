"""The one figure style of the reports: single-column size, colour-blind-safe series styles, saving.

* **Size.** Every figure is drawn at single-column width, :data:`COLUMN_WIDTH` = 3.3 in, with
  8 pt text, so that it is readable where papers put it without rescaling.
* **Series.** A :class:`StyleBook` gives each series name (solver label, layer type, pattern)
  one colour (Okabe & Ito 2008 and Tol's 'muted'; both designed to stay distinguishable under the
  common colour-vision deficiencies; Okabe–Ito's yellow is left out as unreadable on white), one marker and
  one line style. Colours come from the Okabe–Ito palette, then Paul Tol's 'muted' scheme
  (15 colours); colour, marker and line style cycle with periods 15, 9 and 4, so the first 15
  names all differ in colour and any two of the first 180 differ in at least one attribute.
  The book is built once per report from every series name, so a solver looks the same in
  every figure.
* **Saving.** :func:`save` writes the requested formats (``png`` at :data:`PNG_DPI` dpi, vector
  ``pdf`` and ``svg``) and always a PNG, which the Markdown/HTML report embeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.paths import atomic_save_figure  # noqa: E402

COLUMN_WIDTH = 3.3
"""Figure width in inches (one column of a two-column paper)."""

PNG_DPI = 300
FORMATS = ("png", "pdf", "svg")

OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7")
TOL_MUTED = ("#332288", "#CC6677", "#117733", "#882255", "#44AA99", "#999933", "#888888", "#DDCC77")
PALETTE = OKABE_ITO + TOL_MUTED
"""15 colours: Okabe–Ito first, then Paul Tol's 'muted' scheme (also colour-blind safe)."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
LINESTYLES = ("-", "--", "-.", ":")

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "legend.title_fontsize": 7, "lines.linewidth": 1.1, "lines.markersize": 4,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "pdf.fonttype": 42, "svg.fonttype": "none",
    "figure.constrained_layout.use": True,
}

plt.rcParams.update(RC)

CANONICAL_ORDER = ("magnitude", "wanda", "ria", "sparsegpt")
"""Baselines first, in the order of the literature; then the remaining names alphabetically."""

LAYER_TYPES = ("q", "k", "v", "o", "gate", "up", "down", "synthetic", "fc1", "fc2")
"""Layer types have their own fixed styles (index in this tuple), in the order of a transformer block."""


@dataclass
class FigureOutput:
    """A written figure: file stem, the files (PNG first) and its caption for the report."""

    stem: str
    paths: list[Path]
    caption: str


@dataclass(frozen=True)
class SeriesStyle:
    color: str
    marker: str
    linestyle: str

    def line(self) -> dict:
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}

    def points(self) -> dict:
        return {"color": self.color, "marker": self.marker, "linestyle": "none"}


def _order_key(name: str) -> tuple:
    if name in LAYER_TYPES:
        return (-1, LAYER_TYPES.index(name), name)
    head = name.split("+")[0]
    rank = CANONICAL_ORDER.index(head) if head in CANONICAL_ORDER else len(CANONICAL_ORDER)
    return (rank, name.count("+"), name)


class StyleBook:
    """Series name → :class:`SeriesStyle`, fixed for one report (see the module docstring)."""

    def __init__(self, names):
        self.names = sorted({str(n) for n in names} - set(LAYER_TYPES), key=_order_key)
        self._index = {n: i for i, n in enumerate(self.names)}

    def __call__(self, name) -> SeriesStyle:
        name = str(name)
        if name in LAYER_TYPES:
            i = LAYER_TYPES.index(name)
            return SeriesStyle(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])
        if name not in self._index:
            self._index[name] = len(self._index)
        i = self._index[name]
        return SeriesStyle(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)], LINESTYLES[i % len(LINESTYLES)])

    def ordered(self, names) -> list[str]:
        return sorted({str(n) for n in names}, key=_order_key)


def figure(height: float = 2.4, nrows: int = 1, ncols: int = 1, **kwargs):
    """A single-column figure in the report style."""
    return plt.subplots(nrows, ncols, figsize=(COLUMN_WIDTH, height), squeeze=False, **kwargs)


def plain_log_ticks(axis) -> None:
    """Log axis labelled ``0.5``, ``1``, ``2`` … ``100k`` instead of ``5×10⁻¹`` when it spans less than
    2 decades (minor ticks labelled only at mantissas 2 and 5, so labels never crowd)."""
    lo, hi = axis.get_view_interval()
    if lo > 0 and hi / lo < 100:
        def label(v, _=None):
            return f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k" if v >= 1e4 else f"{v:.3g}"

        def minor(v, _):
            mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
            return label(v) if mantissa in (2.0, 5.0) else ""
        axis.set_major_formatter(FuncFormatter(label))
        axis.set_minor_formatter(FuncFormatter(minor))


def legend_below(fig, handles, labels, ncol: int = 2, title: str | None = None) -> None:
    """Legend outside every axes, under the figure (constrained layout makes room for it)."""
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, title=title, handlelength=2.6,
               columnspacing=1.0)


def save(fig, out_dir: Path, stem: str, formats=("png", "pdf")) -> list[Path]:
    """Write ``stem.<fmt>`` for each format (PNG always, first); close the figure."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown figure formats {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    order = ["png"] + [f for f in FORMATS if f in formats and f != "png"]
    paths = []
    for fmt in order:
        path = Path(out_dir) / f"{stem}.{fmt}"
        atomic_save_figure(fig, path, dpi=PNG_DPI if fmt == "png" else None, bbox_inches="tight", pad_inches=0.02,
                           metadata={"Date": None} if fmt in ("pdf", "svg") else None)
        paths.append(path)
    plt.close(fig)
    return paths
