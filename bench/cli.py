"""The ``maskbench`` command line.

Each module in :mod:`bench.commands` defines ``register(subparsers)`` adding its
sub-commands; every sub-command sets ``func(args) -> int`` (the exit code).
Expected user errors (bad files, bad options, unavailable solvers, unwritable paths) print one
line ``maskbench: error: …`` and exit 2 instead of a traceback (``MASKBENCH_DEBUG=1`` shows it);
a ``--json`` command prints exactly one JSON document on stdout, everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sqlite3
import sys

from bench.jsonout import json_stdout
from solvers.errors import MaskbenchError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

USER_ERRORS: tuple[type[BaseException], ...] = (MaskbenchError, ValueError, KeyError, OSError, RuntimeError,
                                                sqlite3.Error)
"""Errors printed as one line (``MASKBENCH_DEBUG=1`` re-raises them with the traceback)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with the house's one-line errors: ``maskbench: error: <sub-command>: <message>`` (exit 2),
    without the usage block (``maskbench COMMAND --help`` shows it); sub-parsers inherit the class."""

    def error(self, message: str):
        where = self.prog.removeprefix("maskbench").strip()
        flat = " ".join(message.split())
        self.exit(2, f"maskbench: error: {where + ': ' if where else ''}{flat} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="maskbench",
        description="Solver-comparison benchmark for layer-wise mask selection in LLM pruning.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import bench.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"bench.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "json", False):
            with json_stdout():
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `maskbench … | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("maskbench: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if os.environ.get("MASKBENCH_DEBUG"):
            raise
        message = " ".join(str(exc).split())  # one line, whatever the message held
        if isinstance(exc, sqlite3.Error):
            message = f"the results store cannot be read; it is damaged or not a maskbench store (sqlite: {message})"
        print(f"maskbench: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
