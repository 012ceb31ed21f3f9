"""The ``--set KEY=VALUE`` options of ``maskbench solve`` and ``maskbench prune``.

Each VALUE is parsed as JSON (``--set max_iters=100`` gives the int 100, ``--set
verbose=true`` a bool) and kept as a plain string when it is not JSON (``--set
method=ipm``). The result is passed to the solver as keyword settings.
"""

from __future__ import annotations

import json
from typing import Any


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``; ``ValueError`` for an item without ``=`` or key."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
