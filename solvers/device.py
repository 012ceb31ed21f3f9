"""Where torch work runs: CUDA when present, else the CPU, or what the user asked for."""

from __future__ import annotations

import torch

from solvers.errors import SettingsError


def pick_device(device: str | torch.device | None) -> torch.device:
    """``device`` or, when None / "auto", CUDA when present, else CPU.

    Raises :class:`SettingsError` for a malformed device or for CUDA on a machine without it.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise SettingsError(f"setting 'device' must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("setting 'device' asks for CUDA, but no CUDA device is available here; "
                            "use device=cpu or leave it unset")
    return dev
