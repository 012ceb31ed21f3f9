"""Materialise a suite's instance sources into instance files under a cache folder.

Generated instances are written once (``<cache>/<family>-…-<hash>.safetensors``) and reused;
instance files given by path are used in place; model sources are extracted by
:mod:`models.extract` (cached per source, an interrupted extraction is redone). Every
instance is loaded once here (validated) to learn its id and shape.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

from bench.model_source import materialise_model
from bench.suites import SuiteError, expand_generated
from bench.tasks import InstanceRef, instance_ref
from solvers import save_instance
from solvers.synthetic import SyntheticSpec, generate


def materialise_generated(src: dict, cache: Path) -> list[InstanceRef]:
    refs = []
    for kwargs in expand_generated(src):
        spec = SyntheticSpec(**kwargs)
        d_in, d_out, _ = spec.resolved()
        tag = json.dumps(kwargs, sort_keys=True)
        name = (f"{spec.family}-{d_out}x{d_in}-{spec.pattern.replace(':', 'of')}-s{spec.seed}-"
                f"{hashlib.sha256(tag.encode()).hexdigest()[:8]}.safetensors")
        path = cache / name
        if not path.exists():
            save_instance(generate(spec), path)
        refs.append(instance_ref(path))
    return refs


def materialise_files(src: dict, base_dir: Path) -> list[InstanceRef]:
    if "path" not in src:
        raise SuiteError("a 'files' instance source needs a 'path'")
    root = Path(src["path"])
    root = root if root.is_absolute() else base_dir / root
    if root.is_dir():
        paths = sorted(root.rglob("*.safetensors"))
    else:
        paths = sorted(Path(p) for p in glob.glob(str(root)))
    if not paths:
        raise SuiteError(f"no instance files found at {root}")
    return [instance_ref(p) for p in paths]


def materialise(sources: list[dict], base_dir: Path, cache: Path, log=print) -> list[InstanceRef]:
    """All instances of a suite, deduplicated by instance id (first occurrence wins)."""
    cache.mkdir(parents=True, exist_ok=True)
    refs: list[InstanceRef] = []
    for src in sources:
        kind = src["kind"]
        if kind == "generated":
            refs += materialise_generated(src, cache)
        elif kind == "files":
            refs += materialise_files(src, base_dir)
        else:
            refs += materialise_model(src, cache, log)
    seen, unique = set(), []
    for ref in refs:
        if ref.instance_id not in seen:
            seen.add(ref.instance_id)
            unique.append(ref)
    return unique
