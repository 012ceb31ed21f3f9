"""The table of registered solvers, and the decorator that fills it.

Kept apart from :mod:`solvers.registry` (which finds, chains and runs solvers) so that a solver
module imports only this small table: the registry imports the built-in solver modules, and
none of them imports the registry back.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from solvers.objective import row_objectives
from solvers.result import SolveResult
from solvers.settings import SettingLimits, SettingTypes, signature_settings

KINDS = ("baseline", "refiner", "exact")
CHAIN_SEPARATOR = "+"
"""Joins the solvers of a chain (``"wanda+swap"``); so no solver name may contain it."""


@dataclass(frozen=True)
class WarmStart:
    """A feasible starting mask with its label and verified float64 objective (total and per row).

    ``row_objectives`` lets a refiner's no-worse-than-the-start guard compare rows without
    re-evaluating the start (``objective == float(row_objectives.sum())``); None when whoever built
    the start did not give them (:func:`warm_row_objectives` then evaluates)."""

    mask: torch.Tensor
    label: str
    objective: float
    row_objectives: torch.Tensor | None = None


def warm_row_objectives(problem, warm_start: WarmStart) -> torch.Tensor:
    """The start's float64 per-row losses on ``problem``: carried, or evaluated now."""
    if warm_start.row_objectives is not None and warm_start.row_objectives.shape == (problem.d_out,):
        return warm_start.row_objectives
    return row_objectives(problem, warm_start.mask)


@dataclass(frozen=True)
class SolverSpec:
    name: str
    kind: str
    summary: str
    function: Callable[..., SolveResult]
    requires: tuple[str, ...] = ()
    extra: str | None = None
    uses_warm_start: bool = False
    default_warm_start: tuple[str, ...] = ()
    settings: SettingTypes | None = None
    prepare: Callable[[], object] | None = None
    limits: SettingLimits | None = None

    def unavailable_reason(self) -> str | None:
        """None when usable, else why not (naming the extra to install)."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not missing:
            return None
        hint = (f"pip install -e \".[{self.extra}]\" in the maskbench checkout, or pip install {' '.join(missing)}"
                if self.extra else f"pip install {' '.join(missing)}")
        return f"needs {', '.join(missing)} (install with: {hint})"


SOLVERS: dict[str, SolverSpec] = {}

def register_solver(name: str, kind: str, summary: str, requires: tuple[str, ...] = (),
                    extra: str | None = None, uses_warm_start: bool = False,
                    default_warm_start: tuple[str, ...] | str = (), settings: SettingTypes | None = None,
                    prepare: Callable[[], object] | None = None, limits: SettingLimits | None = None):
    """Decorator registering ``fn`` as solver ``name``.

    ``default_warm_start`` lists warm-start specs tried in order; the first whose
    solvers are all available is used when the caller gives none. ``settings`` (name → accepted
    types) is read from the function's keyword parameters unless the function takes
    ``**settings``, which must then declare them here to have them checked. ``prepare`` is the
    solver's one-time set-up (compiling a kernel): the solver does it itself when needed, outside its
    own clock, and callers that time whole stages run it first (:func:`solvers.registry.prepare`).
    ``limits`` (name → ``(low, high)``) bounds numeric settings; undeclared ones must be ``>= 0``.
    """
    if kind not in KINDS:
        raise ValueError(f"solver kind must be one of {KINDS}, got {kind!r}")
    if not name or CHAIN_SEPARATOR in name:
        raise ValueError(f"solver name must be non-empty and free of {CHAIN_SEPARATOR!r}, got {name!r}")
    if isinstance(default_warm_start, str):
        default_warm_start = (default_warm_start,)

    def decorate(fn):
        if name in SOLVERS and SOLVERS[name].function is not fn:
            raise ValueError(f"solver {name!r} registered twice")
        accepted = settings if settings is not None else signature_settings(fn)
        SOLVERS[name] = SolverSpec(name, kind, summary, fn, tuple(requires), extra,
                                     uses_warm_start, tuple(default_warm_start), accepted, prepare, limits)
        return fn

    return decorate
