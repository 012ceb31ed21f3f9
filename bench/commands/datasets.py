"""Sub-command ``datasets``: ``fetch`` caches a named dataset (needs network), ``show`` prints a dataset's record."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="cache the papers' datasets (c4, wikitext2, ptb) for offline runs",
                       description="Named datasets are read from the Hugging Face datasets cache and never downloaded "
                                   "by prune/extract. 'fetch NAME' downloads NAME's calibration and evaluation splits "
                                   "into that cache once (needs network access to the Hugging Face hub and the "
                                   "extra maskbench[data]).")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    f = verbs.add_parser("fetch", help="download a named dataset into the datasets cache")
    f.add_argument("name", nargs="+", choices=("c4", "wikitext2", "ptb"), help="dataset(s) to cache")
    f.set_defaults(func=cmd_fetch)


def cmd_fetch(args) -> int:
    from models.protocol_data import fetch

    for name in args.name:
        for line in fetch(name):
            print(line)
    return 0
