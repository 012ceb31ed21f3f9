"""Whole-model defaults of the baselines' released code, applied per layer.

**DSnoT** (github.com/zyxxmu/DSnoT, ``main.py``, commit dd4e2ee): ``--skip_layer`` defaults to
``mlp``, and ``lib/prune.py::prune_DSnoT`` skips the refinement of every layer whose name inside
the decoder block starts with it (``name.split(".")[0] == args.skip_layer``): the MLP layers keep
the initial method's mask (``weight_mask.scatter_(1, initial_prune_indices, True)``) and only the
attention layers (``self_attn.q/k/v/o_proj``) are refined. maskbench's whole-model runs do the same
by default (``dsnot_layers="attention"``): on an MLP layer a chain ending in ``dsnot`` (e.g.
``wanda+dsnot``) runs without its last step, i.e. it is the initial method (``wanda``). With
``dsnot_layers="all"`` (DSnoT's ``--skip_layer no_skip``) every layer is refined. Other solvers
have no layer-dependent default.
"""

from __future__ import annotations

from solvers.registry import format_chain, parse_chain, spec

DSNOT = "dsnot"
DSNOT_LAYERS = ("attention", "all")
DSNOT_SKIPPED_PREFIX = "mlp"   # DSnoT's --skip_layer default


def solver_for_layer(solver: str, warm_start: str | None, kind: str, dsnot_layers: str = "attention"
                     ) -> tuple[str, str | None]:
    """``(solver, warm_start)`` to run on a layer of ``kind`` (its path inside the block, e.g. ``mlp.up_proj``)."""
    if dsnot_layers not in DSNOT_LAYERS:
        raise ValueError(f"dsnot_layers must be one of {DSNOT_LAYERS}, got {dsnot_layers!r}")
    parts = parse_chain(solver)
    skipped = dsnot_layers == "attention" and kind.split(".")[0] == DSNOT_SKIPPED_PREFIX
    if not skipped or parts[-1] != DSNOT:
        return solver, warm_start
    if len(parts) > 1:            # wanda+dsnot → wanda
        return format_chain(parts[:-1]), None
    if warm_start:                # dsnot --warm-start wanda → wanda
        return warm_start, None
    return spec(DSNOT).default_warm_start[0], None   # dsnot alone: its default start (wanda)


def describe(solver: str, dsnot_layers: str) -> str | None:
    """The recorded note for a run whose chain ends in DSnoT, else None."""
    if parse_chain(solver)[-1] != DSNOT:
        return None
    return "attention layers only (DSnoT's released --skip_layer mlp)" if dsnot_layers == "attention" else "all layers"
