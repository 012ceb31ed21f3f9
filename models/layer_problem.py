"""A layer's :class:`~solvers.problem.MaskProblem` built from its statistics without d_in² temporaries.

:meth:`solvers.problem.GramAccumulator.problem` keeps the accumulator intact: it builds ``G`` as a new
tensor from the upper triangle and checks it (``|G|``, ``G − Gᵀ``), which at a 7B ``down_proj``
(d_in = 11008, 0.97 GB per float64 d_in² matrix) raised the peak memory of one layer's set-up from
1.2 GB to 4.0 GB. In a whole-model prune the accumulator is used once and then dropped, so here its
own ``upper`` storage **becomes** ``G``: the strict lower triangle is filled from the upper one in
column blocks (``G[j, :j] = G[:j, j]ᵀ``; no temporary larger than one block), in place.

Checks: the weight is finite, the pattern fits, the scale is in float64's range (as
:meth:`MaskProblem.check` does). ``G`` needs none of the d_in² checks: it is symmetric by construction
(mirrored), and finite because the accumulator refuses a non-finite diagonal and
``|G_jk| ≤ √(G_jj G_kk)`` (Cauchy–Schwarz); positive semidefinite because ``G = Σ x xᵀ`` (the same
argument :meth:`GramAccumulator.problem` uses to skip the Cholesky test). The result equals
``acc.problem(weight, pattern)`` bit for bit, ``gram_factor`` included: while the layer has seen few
tokens (:data:`solvers.problem.FACTOR_MAX_FRACTION`) they go with the problem, so that every mask of a
whole-model run is verified through them (``d_out·d_in·T`` instead of ``d_out·d_in²``; at a 7B
``down_proj`` with 512 tokens about 6 s instead of 100 s on 2 cores, ``docs/scale-solvers.md``)
(``tests/models/test_layer_problem.py``).
"""

from __future__ import annotations

import torch

from solvers.errors import ProblemError
from solvers.pattern import Pattern
from solvers.problem import GramAccumulator, MaskProblem

MIRROR_BLOCK = 1024


def mirror_upper_in_place(upper: torch.Tensor, block: int = MIRROR_BLOCK) -> torch.Tensor:
    """Turn an upper-triangular-accumulated square matrix into the full symmetric one, in place.

    The strict lower triangle of ``upper`` is ignored (overwritten), as :attr:`GramAccumulator.gram`
    ignores it.
    """
    d = upper.shape[0]
    for j0 in range(0, d, block):
        j1 = min(d, j0 + block)
        diag = upper[j0:j1, j0:j1]
        diag.copy_(diag.triu() + diag.triu(1).T)
        if j0:
            upper[j0:j1, :j0] = upper[:j0, j0:j1].T
    return upper


def consume_into_problem(acc: GramAccumulator, weight: torch.Tensor, pattern: Pattern,
                         metadata: dict | None = None) -> MaskProblem:
    """The layer's problem, taking over ``acc``'s storage (``acc`` must not be used afterwards)."""
    if acc.tokens == 0:
        raise ProblemError("GramAccumulator saw no tokens")
    mean, var = acc.mean.cpu(), acc.var.cpu()
    gram = mirror_upper_in_place(acc.upper).cpu()
    acc.upper = None  # spent: its storage is the problem's G now
    factor = acc.token_factor()  # the tokens, while few: masks verified through them
    meta = dict(metadata or {})
    meta.setdefault("tokens", str(acc.tokens))
    weight = weight.to(torch.float32) if weight.dtype not in (torch.float32, torch.float64) else weight
    if not torch.isfinite(weight).all():
        raise ProblemError(f"weight contains {int((~torch.isfinite(weight)).sum())} non-finite values (NaN or inf)")
    problem = MaskProblem(weight, gram, pattern, mean, var, meta, validate=False, gram_factor=factor)
    problem.pattern.validate(problem.d_in)
    problem._check_scale()
    return problem
