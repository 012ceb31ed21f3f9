"""Checks of a local model directory before any weight is loaded: one line for what is wrong.

``from_pretrained`` meets a broken directory deep inside transformers: a missing tokenizer, a
truncated safetensors file or a pickled checkpoint gave a traceback or a multi-line message, and
only after the expensive steps had begun. :func:`check_model_directory` reads the small parts
only (``config.json``, file names, each safetensors header and the file's size):

* ``config.json`` must be a JSON object;
* a tokenizer must be there (``tokenizer.json``, ``tokenizer.model`` or ``vocab.json``);
* weights must be safetensors: a pickled checkpoint (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``)
  alone is refused and never unpickled (unpickling runs arbitrary code); convert it to
  safetensors first;
* every safetensors file must have a readable header whose tensors end exactly at the file's end
  (a truncated download or copy is found here, by its size).

:func:`linear_widths` gives the input widths of the decoder's linear layers from the config, so
an N:M pattern is checked against them before loading (:func:`check_pattern_fits`).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from models.errors import ModelLoadError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _config(directory: Path) -> dict:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{directory}/config.json is not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{directory}/config.json must hold a JSON object")
    return config


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file (None when its header and size agree)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "shorter than a safetensors header"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return f"its header claims {length} bytes but the file has {size}"
        try:
            header = json.loads(fh.read(length))
        except ValueError:
            return "its header is not JSON"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
            and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2]
    need = 8 + length + max(ends, default=0)
    if need != size:
        return f"truncated or padded: its tensors need {need} bytes, the file has {size}"
    return None


def check_model_directory(directory: str | Path) -> dict:
    """The directory's config, after the checks of the module docstring (:class:`ModelLoadError`)."""
    directory = Path(directory)
    config = _config(directory)
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{directory} has no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the tokenizer "
                             f"files of the model into it")
    tensors = sorted(directory.glob("*.safetensors"))
    pickled = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not tensors:
        if pickled:
            raise ModelLoadError(f"{directory} holds only pickled checkpoint(s) ({', '.join(pickled)}), which maskbench "
                                 f"never unpickles; convert them to safetensors")
        raise ModelLoadError(f"{directory} holds no *.safetensors weights")
    for path in tensors:
        problem = safetensors_problem(path)
        if problem:
            raise ModelLoadError(f"{path} is not a complete safetensors file ({problem})")
    return config


def linear_widths(config: dict) -> set[int]:
    """Input widths of a decoder block's linear layers: hidden size (q/k/v, gate/up), intermediate size
    (down) and heads × head dim (o); what an N:M pattern's M must divide."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    widths = {text.get("hidden_size"), text.get("intermediate_size")}
    heads, head_dim = text.get("num_attention_heads"), text.get("head_dim")
    if isinstance(heads, int) and isinstance(head_dim, int):
        widths.add(heads * head_dim)
    return {w for w in widths if isinstance(w, int) and w > 0}


def check_pattern_fits(pattern: str, config: dict, where: str) -> None:
    """An N:M ``pattern`` must divide every linear input width of the model (:class:`ModelLoadError`)."""
    from solvers.pattern import NM, parse_pattern

    parsed = parse_pattern(pattern, 1, 0.5) if ":" in pattern else None
    if isinstance(parsed, NM):
        bad = sorted(w for w in linear_widths(config) if w % parsed.m)
        if bad:
            raise ModelLoadError(f"pattern {pattern}: M={parsed.m} does not divide the input width(s) {bad} of "
                                 f"the linear layers of {where}")
