"""The released calibration / evaluation recipes of Wanda and SparseGPT, on rows of text.

Each function takes the dataset's rows (``list[str]``, or any sequence with ``len`` and
indexing, e.g. a Hugging Face ``Dataset`` column) and a tokenizer and returns token ids exactly
as the released code builds them (github.com/locuslab/wanda ``lib/data.py``, commit 0628038;
github.com/IST-DASLab/sparsegpt ``datautils.py``, commit 54c8443). The tokenizer is called as
the released code calls it, ``tokenizer(text, return_tensors='pt')``: with its default special
tokens (a LLaMA tokenizer prepends BOS; SmolLM2's adds nothing).

* **C4 calibration** (``get_c4``): ``random.seed(seed)``; per sample draw a document index
  ``randint(0, len(rows) − 1)`` until the document has *more than* ``seqlen`` tokens (Wanda:
  ``> seqlen``; SparseGPT writes ``>= seqlen`` but then draws ``randint(0, n − seqlen − 1)``, which
  fails for ``n = seqlen``: the same windows whenever it runs), then a start
  ``randint(0, n − seqlen − 1)``; window ``[start, start + seqlen)``.
* **C4 evaluation**: the first 1 100 validation documents joined by one space, tokenised once,
  truncated to ``256·seqlen`` tokens.
* **WikiText-2 / PTB calibration** (``get_wikitext2``, ``get_ptb``): the train rows joined by one
  space, tokenised once; ``random.seed(seed)``; per sample a start ``randint(0, n − seqlen − 1)``.
* **WikiText-2 evaluation**: the test rows joined by ``"\\n\\n"``; **PTB evaluation**: the test
  rows joined by one space. Tokenised once, all tokens kept.

Evaluation windows are then the non-overlapping ``seqlen`` windows of the ids (stride
``seqlen``, remainder dropped: ``testenc.numel() // seqlen`` in ``lib/eval.py``), see
:func:`models.calibration.eval_windows`. The module-level ``random`` generator is seeded and
used, as released, so the draws match the released code call for call.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.errors import CalibrationError

C4_EVAL_DOCUMENTS = 1100
C4_EVAL_WINDOWS = 256


@dataclass(frozen=True)
class Recipe:
    """How one named dataset is turned into calibration windows and evaluation ids."""

    name: str
    calib_join: str | None    # None: per-document draws (C4); else the rows are joined by this string
    eval_join: str
    eval_documents: int | None = None     # only the first N evaluation rows (C4: 1 100)
    eval_windows: int | None = None       # truncate the evaluation ids to N·seqlen tokens (C4: 256)

    def describe(self) -> dict[str, str]:
        """The joining rules as recorded with every result."""
        calib = "random document longer than seqlen, random window" if self.calib_join is None \
            else f"rows joined by {self.calib_join!r}, random window"
        evaluation = f"rows joined by {self.eval_join!r}"
        if self.eval_documents:
            evaluation = f"first {self.eval_documents} rows joined by {self.eval_join!r}"
        if self.eval_windows:
            evaluation += f", first {self.eval_windows}·seqlen tokens"
        return {"calibration_rule": calib, "evaluation_rule": evaluation + ", non-overlapping seqlen windows"}


C4 = Recipe("c4", None, " ", C4_EVAL_DOCUMENTS, C4_EVAL_WINDOWS)
WIKITEXT2 = Recipe("wikitext2", " ", "\n\n")
PTB = Recipe("ptb", " ", " ")
RECIPES = {r.name: r for r in (C4, WIKITEXT2, PTB)}


def encode(tokenizer, text: str) -> torch.Tensor:
    """``tokenizer(text, return_tensors='pt').input_ids`` flattened to ``[n]`` (the released call)."""
    return tokenizer(text, return_tensors="pt").input_ids.reshape(-1)


def _check(nsamples: int, seqlen: int) -> None:
    if nsamples < 1 or seqlen < 2:
        raise CalibrationError(f"need nsamples ≥ 1 and seqlen ≥ 2, got nsamples={nsamples}, seqlen={seqlen}")


def c4_calibration(rows: Sequence[str], tokenizer, nsamples: int, seqlen: int, seed: int,
                   max_draws: int = 1_000_000) -> torch.Tensor:
    """``[nsamples, seqlen]`` windows by ``get_c4``'s loop (see module docstring).

    ``max_draws`` bounds the document draws (the released loop never ends when no document is
    long enough); exceeding it raises :class:`CalibrationError`.
    """
    _check(nsamples, seqlen)
    if len(rows) == 0:
        raise CalibrationError("the C4 calibration data has no rows")
    random.seed(seed)
    windows, draws = [], 0
    for _ in range(nsamples):
        while True:
            i = random.randint(0, len(rows) - 1)
            ids = encode(tokenizer, rows[i])
            if ids.shape[0] > seqlen:
                break
            draws += 1
            if draws > max_draws:
                raise CalibrationError(f"no C4 document with more than seqlen={seqlen} tokens found in "
                                       f"{max_draws} draws from {len(rows)} rows")
        i = random.randint(0, ids.shape[0] - seqlen - 1)
        windows.append(ids[i:i + seqlen])
    return torch.stack(windows)


def joined_calibration(rows: Sequence[str], tokenizer, nsamples: int, seqlen: int, seed: int,
                       join: str = " ") -> torch.Tensor:
    """``[nsamples, seqlen]`` windows by ``get_wikitext2`` / ``get_ptb`` (rows joined, then random starts)."""
    _check(nsamples, seqlen)
    ids = encode(tokenizer, join.join(rows))
    if ids.shape[0] <= seqlen:
        raise CalibrationError(f"the calibration text has {ids.shape[0]} tokens, need more than seqlen={seqlen}")
    random.seed(seed)
    starts = [random.randint(0, ids.shape[0] - seqlen - 1) for _ in range(nsamples)]
    return torch.stack([ids[i:i + seqlen] for i in starts])


def evaluation_ids(recipe: Recipe, rows: Sequence[str], tokenizer, seqlen: int) -> torch.Tensor:
    """The evaluation ids ``[n]`` of ``recipe`` (joined, tokenised once, C4 truncated to 256·seqlen)."""
    if recipe.eval_documents is not None:
        rows = rows[:recipe.eval_documents]
    ids = encode(tokenizer, recipe.eval_join.join(list(rows)))
    if recipe.eval_windows is not None:
        ids = ids[:recipe.eval_windows * seqlen]
    return ids


def calibration_windows(recipe: Recipe, rows: Sequence[str], tokenizer, nsamples: int, seqlen: int,
                        seed: int) -> torch.Tensor:
    """The calibration windows of ``recipe`` on ``rows``."""
    if recipe.calib_join is None:
        return c4_calibration(rows, tokenizer, nsamples, seqlen, seed)
    return joined_calibration(rows, tokenizer, nsamples, seqlen, seed, recipe.calib_join)
