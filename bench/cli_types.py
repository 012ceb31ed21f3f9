"""Argument types that check ranges while the command line is parsed, before any file is touched.

argparse reports a value these reject as ``maskbench: error: argument --workers: …`` (one line,
exit 2; see :class:`bench.cli.OneLineParser`), so ``--workers -1`` fails before a store or a run
exists rather than after.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts of workers, windows, tokens, rows)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, counts that may be zero)."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds)."""
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1] (sparsity, shares)."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text}")
    return value


def open_fraction(text: str) -> float:
    """A finite number in (0, 1) (the held-out share: neither side may be empty)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got {text}")
    return value


def pattern_text(text: str) -> str:
    """``per-row`` or an N:M pattern with ``1 <= N <= M`` (its fit to the widths is checked later, still
    before any weight is loaded)."""
    from solvers.errors import MaskbenchError
    from solvers.pattern import NM, parse_pattern

    try:
        pattern = parse_pattern(text, 1, 0.5)
        if isinstance(pattern, NM):
            pattern.validate(max(pattern.m, 1))
    except (MaskbenchError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def row_spec(text: str) -> str:
    """``N`` (a positive count: a seeded sample of rows) or ``A:B`` (a range of rows, either end optional);
    whether it fits the instance is checked once the instance is loaded."""
    import re

    text = text.strip()
    if re.fullmatch(r"\d+", text):
        if int(text) < 1:
            raise argparse.ArgumentTypeError(f"a sample needs at least 1 row, got {text}")
        return text
    if re.fullmatch(r"\d*:\d*", text):
        return text
    raise argparse.ArgumentTypeError(f"expected a count N or a range A:B, got {text!r}")
