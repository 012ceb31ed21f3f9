"""Errors of the model side (loading, calibration, structure), for one-line CLI messages."""

from __future__ import annotations

from solvers.errors import MaskbenchError


class ModelLoadError(MaskbenchError, ValueError):
    """The model spec does not name a loadable local model."""


class CalibrationError(MaskbenchError, ValueError):
    """Bad corpus or window parameters."""


class ModelStructureError(MaskbenchError, ValueError):
    """No decoder block list or no prunable layers were found."""
