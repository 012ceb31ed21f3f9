"""Solver registry: one call shape for every solver, and the solver-chain syntax.

    result = solve("swap", problem, warm_start="wanda", time_limit=60, seed=0, **settings)

A solver is a function registered with :func:`solvers.registration.register_solver`, with the signature
``fn(problem, warm_start: WarmStart | None, time_limit, seed, **settings) -> SolveResult``;
it builds its result with :func:`solvers.result.make_result`. Where solvers come from:

* the built-in ones, imported by :func:`_import_builtin_solvers` — one explicit list; backends
  with optional dependencies import those lazily, so every import there succeeds;
* any installed package that declares an entry point in the group ``maskbench.solvers``
  (``[project.entry-points."maskbench.solvers"] my_solver = "my_package.my_solver"``): the module
  it names is imported, and its ``@register_solver`` functions appear in ``maskbench solvers``,
  suites and reports like the built-in ones. A plugin that fails to import is listed as
  unavailable with the reason instead of breaking the registry.

A *chain* ``"wanda+swap+swap"`` means "run the last solver warm-started from the chain before
it"; :func:`parse_chain` and :func:`format_chain` are the one place that syntax is read and
written. The wrapper :func:`solve` resolves warm starts (a name, a chain, a mask or a previous
result), times the call, records settings and versions, and re-verifies any result that was
not verified.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from solvers.errors import InfeasibleMaskError, SolverUnavailableError, UnknownSolverError
from solvers.objective import check_feasible, row_objectives
from solvers.plugin_isolation import import_plugin
from solvers.problem import MaskProblem
from solvers.registration import CHAIN_SEPARATOR, KINDS, SOLVERS, SolverSpec, WarmStart
from solvers.result import SolveResult, library_versions, make_result
from solvers.settings import SettingTypes, check_settings, closest

ENTRY_POINT_GROUP = "maskbench.solvers"


def parse_chain(name: str) -> tuple[str, ...]:
    """``"wanda+swap"`` → ``("wanda", "swap")``; a plain name is a chain of one.

    Raises ``ValueError`` for an empty name or an empty link (``"wanda++swap"``).
    """
    parts = tuple(part.strip() for part in str(name).split(CHAIN_SEPARATOR))
    if not all(parts):
        raise ValueError(f"malformed solver name or chain {name!r}: expected NAME or NAME+NAME+…")
    return parts


def format_chain(parts: Iterable[str]) -> str:
    """Inverse of :func:`parse_chain`."""
    return CHAIN_SEPARATOR.join(parts)


def chain_name(solver: str, warm_start: str | None) -> str:
    """``"wanda+swap"`` for solver swap warm-started from wanda; the solver alone without one."""
    return format_chain((*parse_chain(warm_start), solver)) if warm_start else solver


def split_chain(name: str) -> tuple[str, str | None]:
    """``"wanda+swap+dsnot"`` → ``("dsnot", "wanda+swap")``: the last solver and its warm start."""
    *head, last = parse_chain(name)
    return last, (format_chain(head) if head else None)


@dataclass(frozen=True)
class SolverInfo:
    name: str
    kind: str
    summary: str
    available: bool
    reason: str


_PLUGIN_ERRORS: dict[str, str] = {}
_DISCOVERED = False


def _import_builtin_solvers() -> None:
    """The built-in solvers: importing a module registers the solvers it defines."""
    from solvers.baselines import magnitude, ria, sparsegpt, wanda  # noqa: F401
    from solvers.exact import bruteforce, cbc, gurobi, highs, layer_bound, scip, sdpbb  # noqa: F401
    from solvers.refiners import dsnot, lns, swap  # noqa: F401


def _import_plugin_solvers() -> None:
    """Solvers of installed packages, declared in the entry-point group ``maskbench.solvers``."""
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        before = set(SOLVERS)
        reason = import_plugin(entry)  # exits, exceptions and multi-line messages become one line
        if reason is not None:
            _PLUGIN_ERRORS[entry.name] = reason
            continue
        if set(SOLVERS) == before and entry.name not in SOLVERS:
            _PLUGIN_ERRORS[entry.name] = f"plugin {entry.value!r} registered no solver"


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    _import_builtin_solvers()
    _import_plugin_solvers()


def spec(name: str) -> SolverSpec:
    _discover()
    if name not in SOLVERS:
        if name in _PLUGIN_ERRORS:
            raise SolverUnavailableError(f"solver {name!r} is unavailable: {_PLUGIN_ERRORS[name]}")
        raise UnknownSolverError(
            f"unknown solver {name!r}{closest(name, SOLVERS)}; available: {', '.join(sorted(SOLVERS))}")
    return SOLVERS[name]


def accepted_settings(name: str) -> SettingTypes | None:
    """Setting name → accepted types of solver ``name`` (None: not declared, not checked)."""
    return spec(name).settings


def validate_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` of solver ``name`` (the last of a chain) checked and coerced; see :mod:`solvers.settings`."""
    last, _ = split_chain(name)
    return check_settings(last, accepted_settings(last), settings, spec(last).limits)


def available_solvers() -> list[SolverInfo]:
    """Every registered solver with availability and, if unavailable, the reason."""
    _discover()
    out = []
    for name in sorted(SOLVERS, key=lambda n: (KINDS.index(SOLVERS[n].kind), n)):
        s = SOLVERS[name]
        reason = s.unavailable_reason()
        out.append(SolverInfo(name, s.kind, s.summary, reason is None, reason or ""))
    out += [SolverInfo(name, "plugin", "", False, why) for name, why in sorted(_PLUGIN_ERRORS.items())
            if name not in SOLVERS]
    return out


def chain_unavailable_reason(name: str) -> str | None:
    """None when every solver of a name or chain (``"wanda+swap"``) is usable, else why not.

    Raises :class:`UnknownSolverError` for a name that is not registered.
    """
    for part in parse_chain(name):
        reason = spec(part).unavailable_reason()
        if reason:
            return f"solver {part!r}: {reason}"
    return None


def prepare(name: str) -> None:
    """Run the one-time set-up of every solver of a name or chain (e.g. compile the C++ kernels of
    ``swap``), so that a caller timing a whole stage — a model's prune — does not count it."""
    for part in parse_chain(name):
        s = spec(part)
        if s.prepare is not None and s.unavailable_reason() is None:
            s.prepare()


def is_available(name: str) -> bool:
    """True when every solver of a name or chain (``"wanda+swap"``) is registered and usable."""
    try:
        return chain_unavailable_reason(name) is None
    except (UnknownSolverError, SolverUnavailableError, ValueError):
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
        return _warm(problem, mask, warm_start.solver)
    if isinstance(warm_start, str):
        parts = parse_chain(warm_start)
        current: WarmStart | None = None
        for depth, part in enumerate(parts, start=1):
            res = solve(part, problem, current, time_limit, seed)
            if res.mask is None:
                raise RuntimeError(f"warm start {part!r} failed: {res.message}")
            current = WarmStart(res.mask, format_chain(parts[:depth]), res.objective, res.row_objectives)
        return current
    mask = _checked_warm_mask(problem, warm_start)
    return _warm(problem, mask, "mask")


def _warm(problem: MaskProblem, mask: torch.Tensor, label: str) -> WarmStart:
    """A start evaluated on *this* problem (a result of another problem carries its own values)."""
    rows = row_objectives(problem, mask)
    return WarmStart(mask, label, float(rows.sum()), rows)


def _checked_warm_mask(problem: MaskProblem, mask) -> torch.Tensor:
    try:
        return check_feasible(problem, mask)
    except InfeasibleMaskError as exc:
        raise InfeasibleMaskError(f"warm start refused: {exc}") from None


def solve(name: str, problem: MaskProblem, warm_start=None, time_limit: float | None = None,
          seed: int = 0, **settings: Any) -> SolveResult:
    """Run solver ``name`` (or a chain ``"wanda+swap"``) on ``problem``; see module docstring."""
    last, head = split_chain(name)
    if head is not None:
        if warm_start is not None:
            raise ValueError(f"solver chain {name!r} already defines its warm start")
        result = solve(last, problem, head, time_limit, seed, **settings)
        result.solver = format_chain(parse_chain(name))  # the chain as asked for; warm_start names its head
        return result
    s = spec(name)
    reason = s.unavailable_reason()
    if reason:
        raise SolverUnavailableError(f"solver {name!r} is unavailable: {reason}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    if warm_start is not None and not s.uses_warm_start:
        raise ValueError(f"solver {name!r} ({s.kind}) does not take a warm start")
    settings = check_settings(name, s.settings, settings, s.limits)
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
