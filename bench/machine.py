"""Where and with what a run happened: machine fingerprint, library versions, git state."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from solvers.result import library_versions

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_ram_gib() -> float:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return float("nan")


def gpu_name() -> str | None:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def machine_info() -> dict:
    """JSON-ready description of this machine (compared before timings are compared)."""
    import torch

    versions = library_versions()
    versions["cuda"] = torch.version.cuda or "none"
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "ram_gib": total_ram_gib(), "gpu": gpu_name(),
            "platform": platform.platform(), "hostname": platform.node(), "versions": versions}


def machine_fingerprint(info: dict) -> tuple:
    """What must match for timings of two runs to be comparable: ``(cpu, cores, gpu or None)``."""
    return normalise_fingerprint(info.get("cpu"), info.get("cores"), info.get("gpu"))


def normalise_fingerprint(cpu, cores, gpu) -> tuple:
    """Same fingerprint whether read from JSON, SQLite or a CSV (where None becomes NaN)."""
    def missing(x) -> bool:
        return x is None or (isinstance(x, float) and x != x) or str(x) in ("", "nan", "None")

    return (None if missing(cpu) else str(cpu), None if missing(cores) else int(cores),
            None if missing(gpu) else str(gpu))


def git_state(root: Path = PROJECT_ROOT) -> tuple[str, bool]:
    """``(commit, dirty)`` of the checkout maskbench runs from; ``("unknown", False)`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return commit, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def stored_machine(text) -> dict:
    """A run's ``machine_json`` as stored: a JSON object, else :class:`bench.errors.StoreError` (a damaged
    store would otherwise surface as a ``TypeError`` deep in a report)."""
    import json

    from bench.errors import StoreError

    try:
        machine = json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        machine = None
    if not isinstance(machine, dict):
        raise StoreError(f"a run's machine record is damaged ({str(text)[:40]!r}); the store is not usable as is")
    return machine
