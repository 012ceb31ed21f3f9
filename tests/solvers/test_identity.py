"""Portable identity: the same recipe on another CPU (G perturbed by a few ulps) keeps its key and
fingerprint; a real change of the numbers is caught; instances without provenance key on content."""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers import MaskProblem
from solvers.identity import fingerprint, has_provenance, portable_key, same_content


def ulp_perturbed(problem: MaskProblem, ulps: int, seed: int = 0) -> MaskProblem:
    """The same instance as another machine's BLAS might produce it: G moved by up to ``ulps`` ulps, symmetric."""
    g = problem.gram.clone()
    steps = torch.randint(-ulps, ulps + 1, g.shape, generator=torch.Generator().manual_seed(seed))
    steps = torch.triu(steps) + torch.triu(steps, 1).T
    inf = torch.full_like(g, torch.inf)
    for _ in range(ulps):
        g = torch.where(steps > 0, torch.nextafter(g, inf), torch.where(steps < 0, torch.nextafter(g, -inf), g))
        steps = steps - steps.sign()
    return MaskProblem(problem.weight.clone(), g, problem.pattern, problem.input_mean, problem.input_var,
                       dict(problem.metadata))


@pytest.mark.parametrize("family,d_in,pattern", [("tiny", 16, "per-row"), ("small", 64, "2:4"), ("small", 96, "per-row")])
def test_ulp_perturbation_keeps_key_and_fingerprint_but_not_the_content_hash(family, d_in, pattern):
    p = solvers.generate(family=family, d_in=d_in, d_out=6, seed=2, pattern=pattern)
    q = ulp_perturbed(p, ulps=4)
    assert not torch.equal(p.gram, q.gram) and p.instance_id() != q.instance_id()
    assert has_provenance(p) and portable_key(p) == portable_key(q)
    assert same_content(fingerprint(p), fingerprint(q))


def test_real_changes_are_caught():
    p = solvers.generate(family="small", d_in=32, d_out=4, seed=0)
    g = p.gram.clone()
    g[3, 3] *= 1.0001  # far below any tolerance a user would notice, far above rounding
    changed = MaskProblem(p.weight, g, p.pattern, None, None, dict(p.metadata))
    assert portable_key(changed) == portable_key(p)       # same recipe label …
    assert not same_content(fingerprint(p), fingerprint(changed))  # … but other numbers: caught
    w = p.weight.clone()
    w[0, 0] = -w[0, 0]                                       # a sign flip keeps Σ W² and Σ |W|
    flipped = MaskProblem(w, p.gram, p.pattern, None, None, dict(p.metadata))
    assert not same_content(fingerprint(p), fingerprint(flipped))


def test_key_depends_on_recipe_shape_and_pattern_only():
    a = solvers.generate(family="small", d_in=32, d_out=4, seed=0)
    assert portable_key(a) != portable_key(solvers.generate(family="small", d_in=32, d_out=4, seed=1))
    assert portable_key(a) != portable_key(a.with_pattern(solvers.NM(2, 4)))
    relabelled = MaskProblem(a.weight, a.gram, a.pattern, None, None, dict(a.metadata, parent_instance_id="x"))
    assert portable_key(relabelled) == portable_key(a)  # content hashes in metadata are not provenance


def test_instances_without_provenance_key_on_their_bytes():
    a = solvers.generate(family="tiny", d_in=12, d_out=3, seed=0)
    bare = MaskProblem(a.weight, a.gram, a.pattern)
    assert not has_provenance(bare)
    assert portable_key(bare) == f"content:{bare.instance_id()}"


def test_placement_and_descriptions_stay_out_of_the_key_precision_does_not():
    a = solvers.generate(family="small", d_in=32, d_out=4, seed=0)
    model = dict(a.metadata, model="m.gguf", calibration="pydoc_data.topics", nsamples="8")

    def key(**extra) -> str:
        return portable_key(MaskProblem(a.weight, a.gram, a.pattern, None, None, dict(model, **extra)))

    # where the statistics ran and how the protocol is described: recorded, not provenance
    assert key() == key(device="cuda:0", offload="true", compute_dtype="float16", evaluation="wikitext2",
                        evaluation_rule="joined", evaluation_split="test", eval_windows="12",
                        calibration_rule="random window", calibration_split="first 0.9")
    # float32 storage is what every earlier instance had; another storage precision is another instance
    assert key(dtype="float32") == key()
    assert key(dtype="float16") != key() and key(dtype="bfloat16") != key(dtype="float16")
    assert key(nsamples="16") != key()
