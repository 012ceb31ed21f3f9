"""Command-line options of the literature's protocol for ``maskbench prune`` / ``extract`` (parsing only).

* ``--calib-dataset`` / ``--eval-dataset``: datasets by name or file (:mod:`models.datasets`).
* ``--zero-shot TASKS`` (``paper7`` = the seven tasks), ``--zero-shot-limit N``,
  ``--zero-shot-include DIR``: lm-eval accuracy of the dense and the pruned model (:mod:`models.zero_shot`).
* ``--no-dense-check``: skip the dense-perplexity check (:mod:`models.dense_check`).
* ``--dsnot-layers {attention,all}``: DSnoT's released whole-model default or every layer
  (:mod:`models.baseline_defaults`).
* ``--protocol wanda``: the papers' preset in one word — C4 calibration (128 windows), WikiText-2
  perplexity, the seven zero-shot tasks, seqlen = the model's maximum positions; any of these
  given explicitly wins.
"""

from __future__ import annotations

import argparse

from bench.cli_types import positive_int

PRESETS = {
    "wanda": {"calib_dataset": "c4", "eval_dataset": ["wikitext2"], "nsamples": 128, "seqlen": None,
              "zero_shot": "paper7"},
}
DEFAULT_NSAMPLES = 32
DEFAULT_SEQLEN = 256


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-dataset", default=None, metavar="DATASET",
                   help="calibration data: c4, wikitext2, ptb (released recipes, from the datasets cache), pydoc "
                        "(default, shipped), text:PATH, json:PATH, parquet:PATH, or c4:PATH / wikitext2:PATH / ptb:PATH "
                        "(a recipe on local files)")
    p.add_argument("--eval-dataset", action="append", default=None, metavar="DATASET",
                   help="perplexity data, same forms (default: the calibration dataset's evaluation split); repeatable: "
                        "the first is the main one, each further one is measured too (e.g. wikitext2 and c4)")
    p.add_argument("--protocol", choices=tuple(PRESETS), default=None,
                   help="preset: 'wanda' = --calib-dataset c4 --eval-dataset wikitext2 --nsamples 128 --zero-shot paper7, "
                        "seqlen = the model's maximum positions (explicit options win)")


def add_prune_protocol_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--zero-shot", default=None, metavar="TASKS",
                   help="lm-eval tasks, comma-separated, for the dense and the pruned model ('paper7': boolq, rte, "
                        "hellaswag, winogrande, arc_easy, arc_challenge, openbookqa; offline: pydoc_continuation)")
    p.add_argument("--zero-shot-limit", type=positive_int, default=None, metavar="N", help="examples per task (default: all)")
    p.add_argument("--zero-shot-include", action="append", default=[], metavar="DIR",
                   help="folder of lm-eval task YAML files (repeatable)")
    p.add_argument("--no-dense-check", action="store_true",
                   help="do not stop when the dense perplexity is not finite or above twice the vocabulary size")
    p.add_argument("--dsnot-layers", choices=("attention", "all"), default="attention",
                   help="layers DSnoT refines in a chain ending in dsnot: 'attention' (released default, "
                        "--skip_layer mlp; MLP layers keep the initial mask) or 'all'")


def apply_preset(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset options from ``--protocol`` and then from the plain defaults (in place; returned)."""
    preset = PRESETS.get(getattr(args, "protocol", None) or "", {})
    for key, value in preset.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    explicit_seqlen = getattr(args, "seqlen", None) is not None
    if args.nsamples is None:
        args.nsamples = DEFAULT_NSAMPLES
    if not explicit_seqlen and not preset:
        args.seqlen = DEFAULT_SEQLEN
    return args
