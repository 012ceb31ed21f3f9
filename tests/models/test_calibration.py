"""Calibration corpus, disjoint calibration / held-out split, seeded windows."""

from __future__ import annotations

import hashlib
import sys
import types

import pytest
import torch

from models.calibration import CalibrationError, eval_windows, load_corpus, sample_windows, split_tokens

PYDOC_3_11_7_SHA256 = "71f2ff5d99bdc1f9c48c5c2353ad138201c5ca1c377e0226857ef8fa89b8bcee"


def test_default_corpus_is_the_shipped_snapshot_whatever_the_interpreter(monkeypatch):
    """The default text is CPython 3.11.7's pydoc topics on every Python: an interpreter whose
    ``pydoc_data.topics`` differs (as Debian's 3.11.2 does) gets the same corpus, byte for byte."""
    corpus = load_corpus()
    assert len(corpus.text) == 465_126
    assert hashlib.sha256(corpus.text.encode("utf-8")).hexdigest() == PYDOC_3_11_7_SHA256
    other = types.ModuleType("pydoc_data.topics")
    other.topics = {"a": "another patch release's text"}
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", other)
    assert load_corpus().text == corpus.text


def test_corpus_split_and_windows():
    corpus = load_corpus()
    assert corpus.source == "pydoc_data.topics" and len(corpus.text) > 100_000
    ids = torch.arange(1000)
    calib, held = split_tokens(ids, 0.2)
    assert len(calib) == 800 and len(held) == 200 and int(calib.max()) < int(held.min())
    w1, w2 = sample_windows(calib, 7, 50, seed=3), sample_windows(calib, 7, 50, seed=3)
    assert w1.shape == (7, 50) and torch.equal(w1, w2)
    assert not torch.equal(w1, sample_windows(calib, 7, 50, seed=4))
    assert int(w1.max()) < 800 and ((w1[:, 1:] - w1[:, :-1]) == 1).all()  # contiguous, inside calibration
    ev = eval_windows(held, 64)
    assert ev.shape == (3, 64) and torch.equal(ev.reshape(-1), held[:192])
    with pytest.raises(CalibrationError, match="fewer than seqlen"):
        sample_windows(calib[:10], 2, 50, 0)
    with pytest.raises(CalibrationError, match="eval_fraction"):
        split_tokens(ids, 1.0)
    with pytest.raises(CalibrationError, match="no such file"):
        load_corpus(["/nonexistent/file.txt"])
