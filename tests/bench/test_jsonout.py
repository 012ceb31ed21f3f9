"""The one JSON conversion: non-finite floats to null, tensors and numpy values to plain lists/numbers."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.jsonout import json_ready, json_text


@dataclass
class _Record:
    name: str
    value: float


def test_non_finite_floats_become_none_at_any_depth():
    obj = {"a": math.nan, "b": [1.5, math.inf, (-math.inf, 2)], "c": {"d": np.float64("nan")}, "e": None}
    assert json_ready(obj) == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": None}, "e": None}


def test_tensors_numpy_dataclasses_and_paths_become_plain_values():
    obj = {"t": torch.tensor([[1.0, float("nan")], [0.5, 2.0]]), "n": np.array([1, 2]), "i": np.int64(7),
           "r": _Record("x", math.inf), "p": Path("a/b"), "flag": True, 3: "int key"}
    out = json_ready(obj)
    assert out == {"t": [[1.0, None], [0.5, 2.0]], "n": [1, 2], "i": 7, "r": {"name": "x", "value": None},
                   "p": str(Path("a/b")), "flag": True, "3": "int key"}
    assert type(out["i"]) is int and out["flag"] is True


def test_json_text_is_standard_json():
    text = json_text({"objective": math.nan, "trace": [(0.0, 1.0), (0.1, math.inf)]})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"objective": None, "trace": [[0.0, 1.0], [0.1, None]]}
    with pytest.raises(ValueError):  # the guard json_text relies on
        json.dumps(math.nan, allow_nan=False)
