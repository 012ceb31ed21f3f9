"""Calibration and held-out text: corpus, disjoint split, seeded windows, the recorded protocol.

* **Corpus.** Default: CPython's ``pydoc_data.topics`` (the values of its ``topics`` dict
  joined with blank lines, 465 126 characters), read from the snapshot of CPython 3.11.7 shipped
  in ``models/data/pydoc_topics.json.gz`` (licence: ``models/data/PYTHON_LICENSE.txt``), not from
  the running interpreter: patch releases edit the text (Debian's 3.11.2 differs from 3.11.7), and
  a different text gives different calibration windows, so a model-derived baseline written on
  one Python would not match on another. Or user text files (UTF-8), concatenated with blank
  lines in the given order.
* **Split.** The corpus is tokenised once; the first ``1 − eval_fraction`` of the tokens are the
  calibration part, the last ``eval_fraction`` the held-out part. The two never overlap.
* **Calibration windows.** ``nsamples`` windows of ``seqlen`` tokens whose start positions are
  drawn uniformly from the calibration part with ``random.Random(seed)`` (as Wanda/SparseGPT
  draw from C4).
* **Evaluation windows.** Non-overlapping ``seqlen``-token windows of the held-out part
  (stride ``seqlen``, remainder dropped), see :mod:`models.perplexity`.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch

from models.errors import CalibrationError
from models.text_files import read_text

DEFAULT_SOURCE = "pydoc_data.topics"


@dataclass
class Corpus:
    text: str
    source: str


def load_corpus(paths: list[str] | None = None, encoding: str = "utf-8") -> Corpus:
    """The default ``pydoc_data.topics`` corpus (the shipped CPython 3.11.7 snapshot), or the given text files."""
    if not paths:
        packed = resources.files("models").joinpath("data", "pydoc_topics.json.gz").read_bytes()
        topics = json.loads(gzip.decompress(packed).decode("utf-8"))
        return Corpus("\n\n".join(topics.values()), DEFAULT_SOURCE)
    parts = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise CalibrationError(f"calibration text {p!r}: no such file")
        parts.append(read_text(path, encoding))  # strict: undecodable bytes are an error, never U+FFFD
    text = "\n\n".join(parts)
    if not text.strip():
        raise CalibrationError(f"calibration text files {paths} are empty")
    return Corpus(text, ",".join(str(Path(p).name) for p in paths))


def tokenize(tokenizer, text: str) -> torch.Tensor:
    """Token ids ``[n]`` (long) of ``text``, without special tokens."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return torch.as_tensor(ids, dtype=torch.long).reshape(-1)


def split_tokens(ids: torch.Tensor, eval_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint ``(calibration, held_out)`` parts: a prefix and the following suffix."""
    if not 0.0 < eval_fraction < 1.0:
        raise CalibrationError(f"eval_fraction={eval_fraction} must lie strictly between 0 and 1")
    cut = round(len(ids) * (1.0 - eval_fraction))
    return ids[:cut], ids[cut:]


def sample_windows(ids: torch.Tensor, nsamples: int, seqlen: int, seed: int) -> torch.Tensor:
    """``[nsamples, seqlen]`` windows with starts uniform in ``[0, len − seqlen]``, seeded."""
    if nsamples < 1 or seqlen < 2:
        raise CalibrationError(f"need nsamples ≥ 1 and seqlen ≥ 2, got nsamples={nsamples}, seqlen={seqlen}")
    if len(ids) < seqlen:
        raise CalibrationError(f"calibration part has {len(ids)} tokens, fewer than seqlen={seqlen}")
    rng = random.Random(seed)
    starts = [rng.randint(0, len(ids) - seqlen) for _ in range(nsamples)]
    return torch.stack([ids[s:s + seqlen] for s in starts])


def eval_windows(ids: torch.Tensor, seqlen: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping ``[n, seqlen]`` windows (stride ``seqlen``, remainder dropped)."""
    n = len(ids) // seqlen
    if max_windows is not None:
        n = min(n, max_windows)
    if n < 1:
        raise CalibrationError(f"held-out part has {len(ids)} tokens, fewer than seqlen={seqlen}")
    return ids[:n * seqlen].reshape(n, seqlen)


@dataclass
class Protocol:
    """Everything needed to reproduce the calibration; stored with every result and instance."""

    source: str
    nsamples: int
    seqlen: int
    seed: int
    propagation: str
    eval_fraction: float
    calibration_tokens: int
    eval_tokens: int

    def metadata(self) -> dict[str, str]:
        return {("calibration" if k == "source" else k): str(v) for k, v in asdict(self).items()}


@dataclass
class CalibrationData:
    windows: torch.Tensor       # [nsamples, seqlen] calibration token ids
    held_out: torch.Tensor      # [n] held-out token ids
    protocol: Protocol


def prepare(tokenizer, corpus: Corpus, nsamples: int, seqlen: int, seed: int, propagation: str,
            eval_fraction: float = 0.1) -> CalibrationData:
    """Tokenise, split, draw the calibration windows and record the protocol."""
    ids = tokenize(tokenizer, corpus.text)
    calib, held = split_tokens(ids, eval_fraction)
    windows = sample_windows(calib, nsamples, seqlen, seed)
    protocol = Protocol(corpus.source, nsamples, seqlen, seed, propagation, eval_fraction, len(calib), len(held))
    return CalibrationData(windows, held, protocol)
