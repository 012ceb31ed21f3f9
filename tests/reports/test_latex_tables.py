"""Report tables: strings with one number format per column, and their booktabs LaTeX."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.formatting import format_column, format_percent, format_seconds, format_timestamp, format_value
from reports.latex import escape, to_latex


def test_value_formats():
    assert format_value(29.0684) == "29.07" and format_value(4210) == "4210" and format_value(12160.4) == "12160"
    assert format_value(1.2164e7) == "1.216e+07" and format_value(0) == "0" and format_value(None) == ""
    assert format_column([1.2164e7, 29.0684]) == ["1.216e+07", "2.907e+01"]   # one notation per column
    assert format_column([12160.4, 4210.0]) == ["12160", "4210"]


def test_percent_seconds_timestamps():
    assert format_percent(0.0123) == "1.23" and format_percent(0) == "0" and format_percent(1e-7) == "<0.001"
    assert format_seconds(0.0123456) == "0.0123" and format_seconds(4210.4) == "4210"
    assert format_timestamp(0) == "1970-01-01T00:00:00Z"


def test_booktabs_and_escaping():
    table = pd.DataFrame([{"solver": "wanda+swap", "median gap %": "1.23", "n": "5"},
                          {"solver": "magnitude_x", "median gap %": "<0.001", "n": "5"}])
    tex = to_latex(table, "Gap in % & more", "tab:gap")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrr}", r"\label{tab:gap}"):
        assert rule in tex
    assert r"median gap \%" in tex and r"magnitude\_x" in tex and r"Gap in \% \& more" in tex
    assert r"\textless{}0.001" in tex                     # "<" is not a text-mode character in LaTeX
    assert tex.count(r"\\") == 3          # header + 2 rows


@pytest.mark.parametrize("text, expected", [("a_b", r"a\_b"), ("50 %", r"50 \%"), ("x^2", r"x\textasciicircum{}2"),
                                            ("× fastest", r"\ensuremath{\times} fastest")])
def test_escape(text, expected):
    assert escape(text) == expected
