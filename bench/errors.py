"""Errors of the benchmark side (suites, store), for one-line CLI messages."""

from __future__ import annotations

from solvers.errors import MaskbenchError


class SuiteError(MaskbenchError, ValueError):
    """A suite file is missing or malformed."""


class StoreError(MaskbenchError, ValueError):
    """The store file is missing, not a maskbench store, or the run does not exist."""


class CompareError(MaskbenchError, ValueError):
    """Two result sets cannot be compared meaningfully (nothing matched, other suites, bad tolerance …)."""


class OutputPathError(MaskbenchError, ValueError):
    """An output path would overwrite one of the command's inputs."""


class InstanceFileError(MaskbenchError, ValueError):
    """Instance files given to a benchmark script are missing or none is a full layer."""
