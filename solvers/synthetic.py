"""Seeded synthetic instances with LLM-like activations.

Activations ``X`` [tokens, d_in] are built as ``X = (Z · C) ⊙ s``:

* ``Z`` standard normal [tokens, d_in]; ``C`` mixes channels through a random
  low-rank factor plus identity (correlated channels, as in real hidden states);
* per-channel scales ``s_j`` log-normal around 1 (σ = 0.5), and a few *outlier
  channels* (about 1 %, at least 1) whose scale is 100–1000× the median scale —
  the massive activations of real LLMs — which make ``cond(G)`` 1e4 or more;
* an optional share of *dead* inputs (``G_jj = 0``).

Weights are i.i.d. ``N(0, 1/d_in)``. ``G = XᵀX`` is accumulated in float64.

Families: ``tiny`` (d_in ≤ 20, default 16), ``small`` (24–128, default 64) and
``layer`` (layer-sized, default 576 like SmolLM2-135M's hidden size).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.pattern import NM, Pattern, PerRow, per_row_k
from solvers.problem import GramAccumulator, MaskProblem

FAMILIES = {"tiny": (2, 20, 16, 4), "small": (24, 128, 64, 8), "layer": (129, 1 << 16, 576, 576)}
"""family → (min d_in, max d_in, default d_in, default d_out)."""


@dataclass(frozen=True)
class SyntheticSpec:
    family: str = "small"
    d_in: int | None = None
    d_out: int | None = None
    sparsity: float = 0.5
    pattern: str = "per-row"
    seed: int = 0
    tokens: int | None = None
    dead_fraction: float = 0.0

    def resolved(self) -> tuple[int, int, int]:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family {self.family!r}; choose from {', '.join(FAMILIES)}")
        lo, hi, d_in_default, d_out_default = FAMILIES[self.family]
        d_in = self.d_in if self.d_in is not None else d_in_default
        d_out = self.d_out if self.d_out is not None else d_out_default
        if not lo <= d_in <= hi:
            raise ValueError(f"family {self.family!r} needs d_in in [{lo}, {hi}], got {d_in}")
        if d_out < 1:
            raise ValueError(f"d_out must be positive, got {d_out}")
        tokens = self.tokens if self.tokens is not None else max(4 * d_in, 256)
        return d_in, d_out, tokens

    def make_pattern(self, d_in: int) -> Pattern:
        if self.pattern in ("per-row", "row"):
            return PerRow(per_row_k(d_in, self.sparsity))
        n, _, m = self.pattern.partition(":")
        return NM(int(n), int(m))


def llm_like_activations(tokens: int, d_in: int, generator: torch.Generator,
                         dead_fraction: float = 0.0) -> torch.Tensor:
    """Float64 activations [tokens, d_in] with correlated channels and outlier channels."""
    rank = max(1, d_in // 8)
    z = torch.randn(tokens, d_in, generator=generator, dtype=torch.float64)
    low_rank = torch.randn(d_in, rank, generator=generator, dtype=torch.float64) / rank ** 0.5
    mix = torch.eye(d_in, dtype=torch.float64) + 0.8 * (low_rank @ low_rank.T)
    x = z @ mix
    scale = torch.exp(0.5 * torch.randn(d_in, generator=generator, dtype=torch.float64))
    n_out = max(1, round(0.01 * d_in))
    outliers = torch.randperm(d_in, generator=generator)[:n_out]
    factor = 100.0 * 10.0 ** torch.rand(n_out, generator=generator, dtype=torch.float64)  # 100–1000×
    scale[outliers] = scale.median() * factor
    x = x * scale[None, :]
    n_dead = int(round(dead_fraction * d_in))
    if n_dead:
        dead = torch.randperm(d_in, generator=generator)[:n_dead]
        x[:, dead] = 0.0
    return x


def generate(spec: SyntheticSpec | None = None, **kwargs) -> MaskProblem:
    """Generate one instance; ``generate(family="tiny", seed=3)`` or from a :class:`SyntheticSpec`."""
    spec = spec or SyntheticSpec(**kwargs)
    d_in, d_out, tokens = spec.resolved()
    pattern = spec.make_pattern(d_in)
    pattern.validate(d_in)
    g = torch.Generator().manual_seed(spec.seed)
    x = llm_like_activations(tokens, d_in, g, spec.dead_fraction)
    weight = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / d_in ** 0.5
    acc = GramAccumulator(d_in)
    acc.update(x)
    meta = {"source": "synthetic", "family": spec.family, "seed": str(spec.seed),
            "sparsity": f"{spec.sparsity:g}", "tokens": str(tokens)}
    if spec.dead_fraction:
        meta["dead_fraction"] = f"{spec.dead_fraction:g}"
    return acc.problem(weight, pattern, metadata=meta)
