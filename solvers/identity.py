"""Who an instance is, in a way that survives another machine's float rounding.

``MaskProblem.instance_id()`` hashes the float bytes of W and G. A generated or model-derived
instance is *recomputed* on every machine (``G = XᵀX`` through the CPU's BLAS), so its last bits,
and with them that hash, differ from one CPU to the next while every objective agrees to ~1e-15.
Matching results across machines (the regression gate, history) therefore uses:

* :func:`portable_key` — a hash of the instance's **provenance** (generator family, seed, sizes,
  sparsity, pattern; for model-derived instances the model, its weights digest, the layer, the
  calibration protocol and the crop), written by whatever produced it. An instance without
  provenance (a file made elsewhere) is the same bytes on every machine, so its content hash is
  portable and serves as its key (``content:<instance_id>``).
* :func:`fingerprint` — a few float64 aggregates of the numbers (Σ W², Σ |W|, tr G, Σ |G| and the
  dense loss Σ_i w_iᵀ G w_i). Two machines agree on them to ~1e-15 relative; any real change of
  the content (another generator, other weights, other calibration) moves them by far more than
  :data:`FINGERPRINT_RTOL`, which :func:`same_content` uses.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch

from solvers.problem import MaskProblem

PROVENANCE_MARKERS = ("source", "model")
"""Metadata keys that say an instance was produced from a recorded recipe (generator or model)."""
DERIVED_KEYS = frozenset({"parent_instance_id", "instance_id"})
"""Metadata that is itself a content hash, so not portable: left out of the key."""
EXECUTION_KEYS = frozenset({"device", "offload", "compute_dtype"})
"""Where and in which working precision the statistics were computed: like another CPU's BLAS, this changes
only the rounding of the same recipe, so it is recorded in the metadata but left out of the key (a run on a
GPU matches the same instance computed on a CPU)."""
DESCRIPTIVE_KEYS = frozenset({"calibration_rule", "calibration_split", "evaluation", "evaluation_rule",
                              "evaluation_split", "eval_windows"})
"""Protocol descriptions that do not add to the key: the calibration rule and split follow from the named
``calibration`` recipe and ``eval_fraction`` (both in the key), and the evaluation fields do not enter W or
G at all. Keys of instances recorded before these fields existed stay as they were."""
KEY_DEFAULTS = {"dtype": "float32"}
"""Metadata left out of the key at the value every instance had before the field existed (all models were
loaded in float32): a float16 checkpoint kept in float16 is another instance, a float32 one keeps its key."""
FINGERPRINT_RTOL = 1e-9
"""Relative tolerance of :func:`same_content`: 10⁶× the rounding noise of float64 sums, far below any real change."""


def has_provenance(problem: MaskProblem) -> bool:
    return any(key in problem.metadata for key in PROVENANCE_MARKERS)


def portable_key(problem: MaskProblem) -> str:
    """``prov:<16 hex>`` from provenance + shape + pattern, or ``content:<instance_id>``."""
    if not has_provenance(problem):
        return f"content:{problem.instance_id()}"
    fields = {k: str(v) for k, v in problem.metadata.items()
              if k not in DERIVED_KEYS | EXECUTION_KEYS | DESCRIPTIVE_KEYS and KEY_DEFAULTS.get(k) != str(v)}
    fields.update(problem.pattern.to_metadata())
    fields.update(d_out=str(problem.d_out), d_in=str(problem.d_in))
    text = json.dumps(fields, sort_keys=True)
    return "prov:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(problem: MaskProblem) -> tuple[float, ...]:
    """``(Σ W², Σ |W|, tr G, Σ |G|, Σ_i w_iᵀ G w_i)`` in float64."""
    w = problem.weight.detach().to("cpu", torch.float64)
    g = problem.gram.detach().to("cpu", torch.float64)
    dense_loss = float(torch.einsum("ij,jk,ik->", w, g, w))
    return (float((w * w).sum()), float(w.abs().sum()), float(torch.trace(g)), float(g.abs().sum()), dense_loss)


def same_content(a, b, rtol: float = FINGERPRINT_RTOL) -> bool:
    """Whether two fingerprints describe the same numbers up to rounding."""
    a, b = tuple(a), tuple(b)
    if len(a) != len(b):
        return False
    return all(math.isclose(x, y, rel_tol=rtol, abs_tol=0.0) or x == y for x, y in zip(a, b))
