"""Which rows of a layer a per-row computation covers: all of them, a seeded sample, or a range.

A certified bound over some rows is a bound of *those rows*, not of the layer (the others keep the
trivial bound 0); :class:`RowSelection` carries the label that says which, so that no caller prints a
sample's total as the layer's bound. The sample is the one the gap-bracket and frontier studies use
(:func:`sample_rows`: the first ``count`` of a seeded permutation, sorted), so the same ``--rows N
--seed S`` picks the same rows everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RowSelection:
    """Sorted row indices and what they are."""

    rows: torch.Tensor    # [n] long, sorted, distinct
    sample: bool          # drawn at random (``--rows N``), so a total over them estimates nothing certified
    everything: bool      # every row of the layer: the total is the layer's bound
    label: str            # e.g. "a sample of 8 of 576 rows (seed 0)", "rows 10:20 of 576", "all 576 rows"


def sample_rows(d_out: int, count: int, seed: int) -> torch.Tensor:
    """``count`` distinct rows of ``d_out``, drawn with ``seed``, sorted."""
    g = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(d_out, generator=g)[:count]).values


def select_rows(spec: str | int | None, d_out: int, seed: int = 0) -> RowSelection:
    """Parse ``None`` (all rows), ``N`` (a sample of ``N`` rows drawn with ``seed``) or ``"A:B"``
    (rows ``A ≤ i < B``). Raises ValueError with a one-line message for anything else."""
    every = torch.arange(d_out)
    if spec is None:
        return RowSelection(every, False, True, f"all {d_out} rows")
    text = str(spec).strip()
    if isinstance(spec, bool) or not re.fullmatch(r"\d+|\d*:\d*", text):
        raise ValueError(f"rows must be a count N or a range A:B, got {spec!r}")
    if ":" not in text:
        count = int(text)
        if not 1 <= count <= d_out:
            raise ValueError(f"rows {count}: a sample needs 1 to {d_out} rows (the layer has {d_out})")
        if count == d_out:
            return RowSelection(every, False, True, f"all {d_out} rows")
        return RowSelection(sample_rows(d_out, count, seed), True, False, f"a sample of {count} of {d_out} rows (seed {seed})")
    lo_text, hi_text = text.split(":")
    lo = int(lo_text) if lo_text else 0
    hi = int(hi_text) if hi_text else d_out
    if not 0 <= lo < hi <= d_out:
        raise ValueError(f"rows {text}: a range A:B needs 0 <= A < B <= {d_out} (the layer has {d_out} rows)")
    if lo == 0 and hi == d_out:
        return RowSelection(every, False, True, f"all {d_out} rows")
    return RowSelection(torch.arange(lo, hi), False, False, f"rows {lo}:{hi} of {d_out}")
