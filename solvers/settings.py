"""Solver settings: which keys a solver accepts, of which types, and one-line errors otherwise.

A solver's settings are the keyword parameters of its function after
``(problem, warm_start, time_limit, seed)``; their types come from the annotations (or the
default's type when there is none). A solver that takes ``**settings`` (the exact backends)
declares them when it registers. Values usually arrive from the command line (``--set
KEY=VALUE``, parsed as JSON) or a suite file, so they are checked here, before any work:
an unknown key names the accepted keys and the closest match; a value of the wrong type names
the expected type; a number out of its range (never negative, never infinite or NaN, within the
bounds a solver declares) names the range. ``int`` values are accepted for ``float`` settings (converted); ``bool`` is
never taken for a number.
"""

from __future__ import annotations

import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from solvers.errors import SettingsError

SettingTypes = Mapping[str, tuple[type, ...]]
"""Setting name → the accepted Python types (``type(None)`` when None is allowed)."""

SettingLimits = Mapping[str, tuple[float | None, float | None]]
"""Setting name → ``(low, high)`` inclusive bounds of a number (None: unbounded on that side)."""
DEFAULT_RANGE: tuple[float | None, float | None] = (0, None)

_FIXED_PARAMETERS = ("problem", "warm_start", "time_limit", "seed")


def closest(name: str, candidates) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _types_of(annotation: Any, default: Any) -> tuple[type, ...]:
    if annotation is inspect.Parameter.empty:
        return (type(default),) if default is not inspect.Parameter.empty and default is not None else (object,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(a if isinstance(a, type) else object for a in typing.get_args(annotation))
    return (annotation,) if isinstance(annotation, type) else (object,)


def signature_settings(function: Callable) -> SettingTypes | None:
    """The settings a solver function declares, or None when it takes ``**settings``."""
    params = list(inspect.signature(function).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 -- unresolvable annotations: fall back to the defaults' types
        hints = {}
    return {p.name: _types_of(hints.get(p.name, inspect.Parameter.empty), p.default)
            for p in params if p.name not in _FIXED_PARAMETERS}


def _type_words(allowed: tuple[type, ...]) -> str:
    words = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return " or ".join(words.get(t, t.__name__) for t in allowed)


def coerce(solver: str, key: str, value: Any, allowed: tuple[type, ...]) -> Any:
    """``value`` checked against ``allowed`` (int → float where a float is expected)."""
    if object in allowed:
        return value
    if value is None:
        if type(None) in allowed:
            return None
    elif isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int):
        if int in allowed:
            return value
        if float in allowed:
            return float(value)
    elif isinstance(value, float):
        if float in allowed:
            return value
        if int in allowed and value.is_integer():
            return int(value)
    elif isinstance(value, str):
        if str in allowed:
            return value
    elif isinstance(value, allowed):
        return value
    raise SettingsError(f"setting {key!r} of solver {solver!r} must be {_type_words(allowed)}, got {value!r}")


def check_range(solver: str, key: str, value: Any, limits: SettingLimits | None = None) -> None:
    """A number must be finite and within the solver's declared ``(low, high)`` for ``key`` (either may be
    None), or ``>= 0`` when it declares none: counts, budgets, tolerances and limits are never negative,
    and an unbounded count (``phases = 10000000``) must not size an allocation or outlast a time limit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = (limits or {}).get(key, DEFAULT_RANGE)
    if not math.isfinite(value):
        raise SettingsError(f"setting {key!r} of solver {solver!r} must be a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = (f"between {low:g} and {high:g}" if low is not None and high is not None
                else f">= {low:g}" if low is not None else f"<= {high:g}")
        raise SettingsError(f"setting {key!r} of solver {solver!r} must be {span}, got {value!r}")


def check_settings(solver: str, accepted: SettingTypes | None, settings: Mapping[str, Any],
                   limits: SettingLimits | None = None) -> dict[str, Any]:
    """Validated (and coerced) copy of ``settings``: known keys, right types, numbers in range
    (:func:`check_range`); raises :class:`SettingsError` naming the problem."""
    if accepted is None:
        return dict(settings)
    out = {}
    for key, value in settings.items():
        if key not in accepted:
            names = ", ".join(sorted(accepted)) or "none"
            raise SettingsError(f"unknown setting {key!r} for solver {solver!r}{closest(key, accepted)}; "
                                f"accepted: {names}")
        out[key] = coerce(solver, key, value, accepted[key])
        check_range(solver, key, out[key], limits)
    return out
