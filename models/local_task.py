"""``pydoc_continuation``: a small multiple-choice task, HellaSwag-style, for lm-eval runs without a hub.

Each item is a sentence of the shipped pydoc topics text (:func:`models.calibration.load_corpus`)
cut after 60 % of its words: the context is the start, the right ending is the sentence's own
rest and three wrong endings are the rests of three other sentences (seeded draw). A model that
has learned English and Python's documentation picks the right ending far above chance (25 %);
pruning damage shows as lost accuracy. Items are drawn only from the last 10 % of the text's
characters, the part the default calibration (first 90 % of the tokens) does not see.

The task lives in ``models/data/lm_eval_tasks/pydoc_continuation/``: ``pydoc_continuation.yaml``
(lm-eval task, ``output_type: multiple_choice``, metrics acc and acc_norm), ``utils.py`` (loads
the JSON next to it with ``datasets``) and ``pydoc_continuation.json`` (the items, built by
:func:`build_items` with the defaults; ``tests/models/test_local_task.py`` rebuilds and compares).
"""

from __future__ import annotations

import json
import random
import re
from importlib import resources
from pathlib import Path

TASK_NAME = "pydoc_continuation"
ITEMS = 64
CHOICES = 4
SEED = 0
HELD_OUT_FRACTION = 0.1


def tasks_dir() -> Path:
    """The folder of maskbench's shipped lm-eval tasks (always on lm-eval's include path)."""
    return Path(str(resources.files("models").joinpath("data", "lm_eval_tasks")))


def _sentences(text: str) -> list[list[str]]:
    """Sentences of 12–40 words (split on '.', '!' or '?' followed by whitespace; code lines dropped)."""
    out = []
    for raw in re.split(r"(?<=[.!?])\s+", text):
        words = raw.split()
        if 12 <= len(words) <= 40 and raw[:1].isupper() and not any(c in raw for c in "{}>=<[]"):
            out.append(words)
    return out


def build_items(text: str, n: int = ITEMS, choices: int = CHOICES, seed: int = SEED) -> list[dict]:
    """``n`` items ``{"context", "endings", "label"}`` from the last :data:`HELD_OUT_FRACTION` of ``text``."""
    sentences = _sentences(text[int(len(text) * (1 - HELD_OUT_FRACTION)):])
    if len(sentences) < max(n, choices):
        raise ValueError(f"only {len(sentences)} usable sentences for {n} items")
    rng = random.Random(seed)
    picked = rng.sample(range(len(sentences)), n)
    items = []
    for idx in picked:
        words = sentences[idx]
        cut = round(0.6 * len(words))
        right = " ".join(words[cut:])
        while True:  # redrawn only when two endings coincide (sentences of the text share endings)
            others = rng.sample([j for j in range(len(sentences)) if j != idx], choices - 1)
            endings = [" ".join(sentences[j][round(0.6 * len(sentences[j])):]) for j in others]
            if len({right, *endings}) == choices:
                break
        label = rng.randrange(choices)
        endings.insert(label, right)
        items.append({"context": " ".join(words[:cut]), "endings": endings, "label": label})
    return items


def write_items(path: Path, items: list[dict]) -> None:
    path.write_text(json.dumps(items, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
