"""Importing a solver plugin without letting it end, flood or break the command that imports it.

A plugin is a third-party module named by an entry point; importing it runs its code. Two ways it
used to harm every ``maskbench`` command: a ``sys.exit()`` at import ended the command silently
(``SystemExit`` is not an ``Exception``), and an error message over several lines broke the
one-line error rule. :func:`import_plugin` turns both into one reason line, and keeps what the
plugin printed during a failed import out of the command's output (a successful import's output
is passed on unchanged).
"""

from __future__ import annotations

import contextlib
import io
import sys

MAX_REASON = 300
"""Characters of a plugin's error message kept in its one-line reason."""


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """Whitespace (newlines included) collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def import_plugin(entry) -> str | None:
    """``entry.load()``; None when it worked, else one line saying why (exit, exception, printed lines)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            entry.load()
    except SystemExit as exc:
        reason = f"plugin {entry.value!r} called sys.exit({exc.code!r}) while being imported"
    except Exception as exc:  # noqa: BLE001 -- a broken plugin must not break the registry
        reason = f"plugin {entry.value!r} failed to import: {type(exc).__name__}: {exc}"
    else:
        sys.stdout.write(out.getvalue())
        sys.stderr.write(err.getvalue())
        return None
    printed = len((out.getvalue() + err.getvalue()).splitlines())
    return one_line(reason) + (f" (it printed {printed} lines, not shown)" if printed else "")
