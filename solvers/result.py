"""Solver results, always re-verified with the one float64 objective."""

from __future__ import annotations

import functools
import math
import platform
from dataclasses import dataclass, field
from typing import Any

import torch

from solvers.objective import evaluate
from solvers.problem import MaskProblem

OPTIMAL = "optimal"          # proved optimal (exact solvers only)
FEASIBLE = "feasible"        # a verified feasible mask, no optimality claim
TIME_LIMIT = "time_limit"    # stopped by the time limit; mask feasible, bound may be loose
ITERATION_LIMIT = "iteration_limit"  # stopped by an iteration cap
ERROR = "error"              # the solver failed; see ``message``
STATUSES = (OPTIMAL, FEASIBLE, TIME_LIMIT, ITERATION_LIMIT, ERROR)
STATUS_RANK = {OPTIMAL: 3, FEASIBLE: 2, ITERATION_LIMIT: 2, TIME_LIMIT: 1, ERROR: 0}
"""Order used by the regression gate: a lower rank is a downgrade."""


@dataclass
class SolveResult:
    """What every solver returns.

    ``objective`` and ``row_objectives`` are always recomputed in float64 from
    ``mask`` by :func:`make_result` — never copied from a solver's own report.
    Units: (output activation)² summed over calibration tokens, as ``G``.
    """

    solver: str
    status: str
    mask: torch.Tensor | None
    objective: float
    row_objectives: torch.Tensor | None
    lower_bound: float | None = None
    row_lower_bounds: torch.Tensor | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    iterations: int = 0
    nodes: int | None = None
    trace: list[tuple[float, float]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    warm_start: str | None = None
    warm_start_objective: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verified: bool = False
    weights: torch.Tensor | None = None
    """Updated weights ``[d_out, d_in]`` float64, zero where pruned, for methods that also change kept
    weights (``sparsegpt`` with ``update_weights=true``, :mod:`solvers.reconstruct`); None for a pure
    mask. Their loss is in ``extra`` (``objective_with_weight_update`` / ``objective_reconstructed``);
    ``objective`` stays the mask-only ``f(M)``. Not part of :meth:`summary`."""

    @property
    def gap(self) -> float | None:
        """``(objective − lower_bound) / objective``; 0 when both are 0; None without a bound."""
        if self.lower_bound is None or not math.isfinite(self.objective):
            return None
        if self.objective <= 0.0:
            return 0.0
        return max(0.0, (self.objective - self.lower_bound) / self.objective)

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars (no mask)."""
        return {
            "solver": self.solver, "status": self.status, "objective": self.objective,
            "lower_bound": self.lower_bound, "gap": self.gap,
            "build_seconds": self.build_seconds, "solve_seconds": self.solve_seconds,
            "iterations": self.iterations, "nodes": self.nodes, "warm_start": self.warm_start,
            "warm_start_objective": self.warm_start_objective, "settings": self.settings,
            "message": self.message, "verified": self.verified, "extra": self.extra,
        }


def make_result(problem: MaskProblem, mask, solver: str, status: str = FEASIBLE,
                **fields: Any) -> SolveResult:
    """Verify ``mask`` (pattern + float64 objective) and wrap it in a :class:`SolveResult`.

    Raises :class:`~solvers.objective.InfeasibleMaskError` if the mask breaks the pattern.
    A lower bound above the verified objective (beyond 1e-9 relative) is a solver bug
    and is reported in ``message`` while the bound is clipped to the objective.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
    mask, rows = evaluate(problem, mask)
    total = float(rows.sum())
    res = SolveResult(solver=solver, status=status, mask=mask, objective=total,
                      row_objectives=rows, verified=True, **fields)
    if res.lower_bound is not None and res.lower_bound > total * (1 + 1e-9) + 1e-300:
        res.message = (res.message + "; " if res.message else "") + (
            f"reported lower bound {res.lower_bound:.12g} exceeds verified objective {total:.12g}")
        res.lower_bound = total
    return res


def error_result(solver: str, message: str, **fields: Any) -> SolveResult:
    """A failed solve: no mask, objective NaN, status ``error``."""
    return SolveResult(solver=solver, status=ERROR, mask=None, objective=float("nan"),
                       row_objectives=None, message=message, **fields)


def library_versions() -> dict[str, str]:
    """Versions of the numerical stack, recorded with every result (a fresh dict each call)."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:
    """Looked up once per process: reading package metadata took ~10 ms, per solve."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("numpy", "highspy", "pulp", "transformers", "pyscipopt", "gurobipy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
