"""What else a whole-model result needs to be rerun: model dtype, device, GPU name, library versions.

The data part of the record (datasets, files and their sha256, splits, joining rules, nsamples,
seqlen, seed, evaluation windows) is :class:`models.protocol_data.DataRecord`; this module adds the
environment. Versions are read from the installed distributions (``importlib.metadata``), so
nothing is imported that the run did not need; an absent package is recorded as ``None``.
"""

from __future__ import annotations

from importlib import metadata

import torch

LIBRARIES = ("torch", "transformers", "datasets", "lm-eval", "tokenizers", "accelerate")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment_record(model: torch.nn.Module) -> dict:
    """``{dtype, device, gpu, versions}`` of the model as it runs."""
    param = next(model.parameters())
    device = param.device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"dtype": str(param.dtype).removeprefix("torch."), "device": str(device), "gpu": gpu,
            "versions": library_versions()}
