"""Every error the solvers raise for bad input, in one place.

All derive from :class:`MaskbenchError`, which the command line turns into one line
``maskbench: error: …`` (exit 2) instead of a traceback; each also derives from the built-in
exception a caller would expect (``ValueError`` for bad data, ``KeyError`` for an unknown name),
so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class MaskbenchError(Exception):
    """Base of every error that reports a user's mistake (bad file, option, name or data)."""


class ProblemError(MaskbenchError, ValueError):
    """The problem data are malformed (shapes, non-finite values, G not PSD …)."""


class PatternError(MaskbenchError, ValueError):
    """A pattern is malformed or does not fit the problem's shape."""


class InfeasibleMaskError(MaskbenchError, ValueError):
    """A mask violates the problem's sparsity pattern or has the wrong shape/type."""


class InstanceFileError(MaskbenchError, ValueError):
    """A file is not a readable maskbench instance or mask file."""


class MissingStatisticsError(MaskbenchError, ValueError):
    """A solver needs per-input statistics (means, variances) the instance does not carry."""


class SettingsError(MaskbenchError, ValueError):
    """A solver setting is unknown or has a value of the wrong type."""


class SolverUnavailableError(MaskbenchError, RuntimeError):
    """The solver exists but an optional dependency is missing."""


class UnknownSolverError(MaskbenchError, KeyError):
    """No solver of that name is registered."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])
