"""The one JSON conversion of the project: plain, finite, standard JSON.

``json.dumps`` writes ``NaN``/``Infinity`` for non-finite floats, which is not JSON (other
readers reject it), and fails on tensors and numpy values. :func:`json_ready` turns any
result value into plain Python: non-finite floats become ``None`` (a missing objective or
bound), tensors / numpy arrays / numpy scalars become lists or numbers (via ``tolist``),
dataclasses become dicts, tuples and sets become lists, paths and other objects their
``str``. :func:`json_text` dumps the converted value with ``allow_nan=False``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
from collections.abc import Iterator
from typing import Any

from solvers.console import stdout_to_stderr


def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON-ready Python (recursively); non-finite floats become ``None``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, float):  # also numpy.float64, a float subclass
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_ready(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_ready(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # torch.Tensor, numpy arrays and numpy scalars
        return json_ready(obj.tolist())
    return str(obj)


def json_text(obj: Any, **dumps_kwargs: Any) -> str:
    """``json.dumps(json_ready(obj))``; never writes ``NaN`` or ``Infinity``."""
    return json.dumps(json_ready(obj), allow_nan=False, **dumps_kwargs)


_pending: list[str] | None = None


def emit_json(obj: Any, **dumps_kwargs: Any) -> None:
    """Print ``obj`` as the command's one JSON document (deferred inside :func:`json_stdout`)."""
    text = json_text(obj, **dumps_kwargs)
    if _pending is None:
        print(text, flush=True)
    else:
        _pending.append(text)


@contextlib.contextmanager
def json_stdout() -> Iterator[None]:
    """Keep stdout for the one JSON document of a ``--json`` command.

    While the command runs, file descriptor 1 points to stderr (:func:`solvers.console.stdout_to_stderr`) — so banners that solver
    libraries print from C (HiGHS), from worker processes or from sub-processes (CBC) land on
    stderr — and so does ``sys.stdout``, for Python-level prints. :func:`emit_json` holds the
    document back; it is printed on the real stdout once both are restored.
    """
    global _pending
    saved_stdout = sys.stdout
    _pending = []
    try:
        with stdout_to_stderr():
            sys.stdout = sys.stderr
            try:
                yield
            finally:
                sys.stderr.flush()
                sys.stdout = saved_stdout
    finally:
        documents, _pending = _pending, None
    for text in documents:
        print(text, flush=True)
