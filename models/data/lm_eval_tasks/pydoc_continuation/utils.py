"""Dataset loader of the pydoc_continuation lm-eval task: the JSON file next to this one, as a ``test`` split."""

import json
from pathlib import Path

import datasets

ITEMS = Path(__file__).with_name("pydoc_continuation.json")


def load_items(**kwargs) -> datasets.DatasetDict:
    """``{"test": Dataset}`` with columns context, endings, label (lm-eval passes task metadata as kwargs)."""
    rows = json.loads(ITEMS.read_text(encoding="utf-8"))
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
