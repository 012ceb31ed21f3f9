"""Solver registry: one call shape for every solver.

    result = solve("swap", problem, warm_start="wanda", time_limit=60, seed=0, **settings)

Solver modules register an implementation with :func:`register_solver`; every
module of the ``solvers`` package is imported on first use, so adding a solver
is adding a file. An implementation has the signature
``fn(problem, warm_start: WarmStart | None, time_limit, seed, **settings) -> SolveResult``
and builds its result with :func:`solvers.result.make_result`. The wrapper here
resolves warm starts (a solver name, a chain such as ``"wanda+swap"``, a mask or
a previous result), times the call, records settings and versions, and
re-verifies any result that was not verified.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from solvers.objective import InfeasibleMaskError, check_feasible, objective
from solvers.problem import MaskProblem
from solvers.result import SolveResult, library_versions, make_result

KINDS = ("baseline", "refiner", "exact")


class SolverUnavailableError(RuntimeError):
    """The solver exists but an optional dependency is missing."""


class UnknownSolverError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


@dataclass(frozen=True)
class WarmStart:
    """A feasible starting mask with its label and verified objective."""

    mask: torch.Tensor
    label: str
    objective: float


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

    def unavailable_reason(self) -> str | None:
        """None when usable, else why not (naming the extra to install)."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not missing:
            return None
        hint = f"pip install 'maskbench[{self.extra}]'" if self.extra else f"pip install {' '.join(missing)}"
        return f"needs {', '.join(missing)} (install with: {hint})"


@dataclass(frozen=True)
class SolverInfo:
    name: str
    kind: str
    summary: str
    available: bool
    reason: str


_REGISTRY: dict[str, SolverSpec] = {}
_DISCOVERED = False


def register_solver(name: str, kind: str, summary: str, requires: tuple[str, ...] = (),
                    extra: str | None = None, uses_warm_start: bool = False,
                    default_warm_start: tuple[str, ...] | str = ()):
    """Decorator registering ``fn`` as solver ``name``.

    ``default_warm_start`` lists warm-start specs tried in order; the first whose
    solvers are all available is used when the caller gives none.
    """
    if kind not in KINDS:
        raise ValueError(f"solver kind must be one of {KINDS}, got {kind!r}")
    if isinstance(default_warm_start, str):
        default_warm_start = (default_warm_start,)

    def decorate(fn):
        if name in _REGISTRY and _REGISTRY[name].function is not fn:
            raise ValueError(f"solver {name!r} registered twice")
        _REGISTRY[name] = SolverSpec(name, kind, summary, fn, tuple(requires), extra,
                                     uses_warm_start, tuple(default_warm_start))
        return fn

    return decorate


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    import solvers

    for info in pkgutil.iter_modules(solvers.__path__):
        importlib.import_module(f"solvers.{info.name}")
    _DISCOVERED = True


def spec(name: str) -> SolverSpec:
    _discover()
    if name not in _REGISTRY:
        raise UnknownSolverError(
            f"unknown solver {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def available_solvers() -> list[SolverInfo]:
    """Every registered solver with availability and, if unavailable, the reason."""
    _discover()
    out = []
    for name in sorted(_REGISTRY, key=lambda n: (KINDS.index(_REGISTRY[n].kind), n)):
        s = _REGISTRY[name]
        reason = s.unavailable_reason()
        out.append(SolverInfo(name, s.kind, s.summary, reason is None, reason or ""))
    return out


def chain_unavailable_reason(name: str) -> str | None:
    """None when every solver of a name or chain (``"wanda+swap"``) is usable, else why not.

    Raises :class:`UnknownSolverError` for a name that is not registered.
    """
    for part in (p.strip() for p in name.split("+")):
        reason = spec(part).unavailable_reason()
        if reason:
            return f"solver {part!r}: {reason}"
    return None


def is_available(name: str) -> bool:
    """True when every solver of a name or chain (``"wanda+swap"``) is registered and usable."""
    try:
        return chain_unavailable_reason(name) is None
    except UnknownSolverError:
        return False


def get_solver(name: str) -> Callable[..., SolveResult]:
    """``solve`` bound to one solver name; raises if unknown or unavailable."""
    s = spec(name)
    reason = s.unavailable_reason()
    if reason:
        raise SolverUnavailableError(f"solver {name!r} is unavailable: {reason}")

    def bound(problem: MaskProblem, warm_start=None, time_limit: float | None = None,
              seed: int = 0, **settings: Any) -> SolveResult:
        return solve(name, problem, warm_start, time_limit, seed, **settings)

    bound.__name__ = f"solve_{name}"
    bound.__doc__ = s.function.__doc__
    return bound


def resolve_warm_start(problem: MaskProblem, warm_start, seed: int = 0,
                       time_limit: float | None = None) -> WarmStart | None:
    """Turn a solver name / chain (``"wanda+swap"``), a mask or a result into a :class:`WarmStart`.

    An infeasible mask is refused with :class:`InfeasibleMaskError`.
    """
    if warm_start is None:
        return None
    if isinstance(warm_start, WarmStart):
        return warm_start
    if isinstance(warm_start, SolveResult):
        if warm_start.mask is None:
            raise InfeasibleMaskError(f"warm start from solver {warm_start.solver!r} has no mask "
                                      f"(status {warm_start.status}: {warm_start.message})")
        mask = _checked_warm_mask(problem, warm_start.mask)
        return WarmStart(mask, warm_start.solver, objective(problem, mask))
    if isinstance(warm_start, str):
        parts = [p.strip() for p in warm_start.split("+") if p.strip()]
        if not parts:
            raise ValueError("empty warm-start name")
        current: WarmStart | None = None
        for part in parts:
            res = solve(part, problem, current, time_limit, seed)
            if res.mask is None:
                raise RuntimeError(f"warm start {part!r} failed: {res.message}")
            current = WarmStart(res.mask, "+".join(parts[:parts.index(part) + 1]), res.objective)
        return current
    mask = _checked_warm_mask(problem, warm_start)
    return WarmStart(mask, "mask", objective(problem, mask))


def _checked_warm_mask(problem: MaskProblem, mask) -> torch.Tensor:
    try:
        return check_feasible(problem, mask)
    except InfeasibleMaskError as exc:
        raise InfeasibleMaskError(f"warm start refused: {exc}") from None


def solve(name: str, problem: MaskProblem, warm_start=None, time_limit: float | None = None,
          seed: int = 0, **settings: Any) -> SolveResult:
    """Run solver ``name`` (or a chain ``"wanda+swap"``) on ``problem``; see module docstring."""
    if "+" in name:
        *head, last = [p.strip() for p in name.split("+")]
        if warm_start is not None:
            raise ValueError(f"solver chain {name!r} already defines its warm start")
        return solve(last, problem, "+".join(head), time_limit, seed, **settings)
    s = spec(name)
    reason = s.unavailable_reason()
    if reason:
        raise SolverUnavailableError(f"solver {name!r} is unavailable: {reason}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    if warm_start is not None and not s.uses_warm_start:
        raise ValueError(f"solver {name!r} ({s.kind}) does not take a warm start")
    if warm_start is None and s.uses_warm_start:
        warm_start = next((w for w in s.default_warm_start if is_available(w)), None)
    t0 = time.perf_counter()
    ws = resolve_warm_start(problem, warm_start, seed)
    warm_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = s.function(problem, ws, time_limit, seed, **settings)
    wall = time.perf_counter() - t1
    if not result.verified and result.mask is not None:
        verified = make_result(problem, result.mask, name, result.status)
        result.objective, result.row_objectives = verified.objective, verified.row_objectives
        result.mask, result.verified = verified.mask, True
    result.solver = name
    if result.build_seconds == 0.0 and result.solve_seconds == 0.0:
        result.solve_seconds = wall
    recorded = dict(settings)
    recorded.update(seed=seed, time_limit=time_limit)
    result.settings = {**recorded, **result.settings}
    if ws is not None:
        result.warm_start = ws.label
        result.warm_start_objective = ws.objective
        result.extra.setdefault("warm_start_seconds", warm_seconds)
    result.versions = library_versions()
    return result
