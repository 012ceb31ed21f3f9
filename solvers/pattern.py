"""Sparsity patterns of the mask-selection problem.

A mask is a boolean tensor ``[d_out, d_in]`` with ``True`` = keep.

* :class:`PerRow` — exactly ``k`` weights are pruned in every output row.
* :class:`NM` — in every group of ``m`` consecutive input columns of every row
  exactly ``n`` weights are *kept* (2:4 keeps 2 of 4, the NVIDIA convention), so
  ``m - n`` are pruned per group.

Both make the rows of the problem independent binary quadratic programs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.errors import PatternError


@dataclass(frozen=True)
class PerRow:
    """Prune exactly ``k`` of the ``d_in`` weights of every row."""

    k: int

    def validate(self, d_in: int) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool):
            raise PatternError(f"per-row pattern: k must be an integer, got {self.k!r}")
        if not 0 <= self.k <= d_in:
            raise PatternError(f"per-row pattern: k={self.k} is outside [0, d_in={d_in}]")

    def pruned_per_row(self, d_in: int) -> int:
        return self.k

    def describe(self) -> str:
        return f"per-row k={self.k}"

    def to_metadata(self) -> dict[str, str]:
        return {"pattern": "per-row", "k": str(self.k)}

    def is_feasible(self, mask: torch.Tensor) -> torch.Tensor:
        """Per-row feasibility flags ``[d_out]`` of a boolean keep-mask."""
        return (~mask).sum(dim=1) == self.k


@dataclass(frozen=True)
class NM:
    """Keep exactly ``n`` of every ``m`` consecutive input columns in each row."""

    n: int
    m: int

    def validate(self, d_in: int) -> None:
        for name, v in (("n", self.n), ("m", self.m)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise PatternError(f"N:M pattern: {name} must be an integer, got {v!r}")
        if self.m < 1:
            raise PatternError(f"N:M pattern: M={self.m} must be positive")
        if not 1 <= self.n <= self.m:
            raise PatternError(f"N:M pattern: N={self.n} is outside [1, M={self.m}]")
        if d_in % self.m != 0:
            raise PatternError(f"N:M pattern: M={self.m} does not divide d_in={d_in}")

    @property
    def pruned_per_group(self) -> int:
        return self.m - self.n

    def pruned_per_row(self, d_in: int) -> int:
        return (d_in // self.m) * (self.m - self.n)

    def describe(self) -> str:
        return f"{self.n}:{self.m}"

    def to_metadata(self) -> dict[str, str]:
        return {"pattern": "n:m", "n": str(self.n), "m": str(self.m)}

    def is_feasible(self, mask: torch.Tensor) -> torch.Tensor:
        d_out, d_in = mask.shape
        if d_in % self.m:
            return torch.zeros(d_out, dtype=torch.bool, device=mask.device)
        kept = mask.reshape(d_out, d_in // self.m, self.m).sum(dim=2)
        return (kept == self.n).all(dim=1)


Pattern = PerRow | NM


def parse_pattern(text: str, d_in: int | None = None, sparsity: float | None = None) -> Pattern:
    """Parse ``"2:4"`` into :class:`NM`, or ``"per-row"`` (with ``sparsity``) into :class:`PerRow`.

    ``sparsity`` is the pruned fraction; per-row ``k = round(sparsity * d_in)``.
    """
    text = text.strip().lower()
    if ":" in text:
        left, _, right = text.partition(":")
        try:
            n, m = int(left), int(right)
        except ValueError:
            raise PatternError(f"cannot parse N:M pattern {text!r}; expected e.g. '2:4'") from None
        return NM(n, m)
    if text in ("per-row", "perrow", "row"):
        if d_in is None or sparsity is None:
            raise PatternError("a per-row pattern needs d_in and a sparsity")
        return PerRow(per_row_k(d_in, sparsity))
    raise PatternError(f"unknown pattern {text!r}; use 'per-row' or N:M such as '2:4'")


def per_row_k(d_in: int, sparsity: float) -> int:
    """Number of pruned weights per row for a pruned fraction ``sparsity`` in [0, 1]."""
    if not 0.0 <= sparsity <= 1.0:
        raise PatternError(f"sparsity={sparsity} is outside [0, 1]")
    return int(round(sparsity * d_in))


def metadata_int(meta: dict[str, str], key: str) -> int:
    """``meta[key]`` as a non-negative integer written plainly (digits only: not " 16 ", "1_6", "+16")."""
    if key not in meta:
        raise PatternError(f"pattern metadata lacks {key!r}: {meta!r}")
    text = meta[key]
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise PatternError(f"pattern metadata {key!r} must be a plain integer, got {text!r}")
    return int(text)


def pattern_from_metadata(meta: dict[str, str]) -> Pattern:
    """Inverse of ``Pattern.to_metadata`` (instance files); integers must be written plainly."""
    kind = meta.get("pattern")
    if kind == "per-row":
        return PerRow(metadata_int(meta, "k"))
    if kind == "n:m":
        return NM(metadata_int(meta, "n"), metadata_int(meta, "m"))
    raise PatternError(f"unknown pattern kind {kind!r} in metadata; expected 'per-row' or 'n:m'")
