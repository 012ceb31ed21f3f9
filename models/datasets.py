"""Calibration and evaluation data by name or by file, through the released recipes.

A dataset argument (``--calib-dataset`` / ``--eval-dataset``) is one of

* ``pydoc`` — the shipped CPython 3.11.7 ``pydoc_data.topics`` text (offline default);
* ``text:PATH`` (the whole UTF-8 file is one document), ``json:PATH`` (JSON lines or a JSON array
  of objects, optionally ``.gz``; one document per row, field ``text``), ``parquet:PATH`` (column
  ``text``). These and ``pydoc`` use maskbench's *split* recipe (:mod:`models.calibration`): the
  documents joined by blank lines and tokenised without special tokens; calibration windows from
  the first ``1 − eval_fraction`` of the tokens, evaluation windows from the rest, never overlapping;
* ``c4``, ``wikitext2``, ``ptb`` — the released recipes (:mod:`models.recipes`) on the Hugging Face
  data the papers use, read through ``datasets`` (extra ``.[data]``) from its cache, never
  downloaded here (``maskbench datasets fetch NAME`` caches them once, with network access):
  C4 ``allenai/c4`` shards ``en/c4-train.00000-of-01024.json.gz`` / ``en/c4-validation.00000-of-00008.json.gz``;
  WikiText-2 ``Salesforce/wikitext`` ``wikitext-2-raw-v1`` train / test; PTB ``ptb_text_only``
  ``penn_treebank`` train / test (field ``sentence``);
* ``c4:PATH``, ``wikitext2:PATH``, ``ptb:PATH`` — the same recipes on local files: a file is the
  split of its role (the train shard for calibration, the validation / test file for evaluation):
  ``.json[.gz]`` (field ``text``; ``sentence`` for PTB), ``.parquet`` (column ``text``), or a raw text
  file whose lines are the rows as the WikiText builder made them (each line with its ``\\n``,
  blank lines as empty rows). A directory is read in the hub's layout (``en/c4-…json.gz``;
  ``wikitext-2-raw-v1/{train,test}-00000-of-00001.parquet`` or ``wiki.{train,test}.raw``).

Every local file is identified by the sha256 of its bytes; hub data by the sha256 of the
``datasets`` cache files it was read from.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from models.digests import sha256_file
from models.errors import CalibrationError

LOCAL_KINDS = ("text", "json", "parquet")
SPLIT_NAMES = ("pydoc",) + LOCAL_KINDS
HUB = {
    # name: (path, config name, {role: data file or split}, field)
    "c4": ("allenai/c4", None, {"calibration": "en/c4-train.00000-of-01024.json.gz",
                                "evaluation": "en/c4-validation.00000-of-00008.json.gz"}, "text"),
    "wikitext2": ("Salesforce/wikitext", "wikitext-2-raw-v1", {"calibration": "train", "evaluation": "test"}, "text"),
    "ptb": ("ptb_text_only", "penn_treebank", {"calibration": "train", "evaluation": "test"}, "sentence"),
}
LOCAL_LAYOUT = {
    "c4": {"calibration": ("en/c4-train.00000-of-01024.json.gz",),
           "evaluation": ("en/c4-validation.00000-of-00008.json.gz",)},
    "wikitext2": {"calibration": ("wikitext-2-raw-v1/train-00000-of-00001.parquet", "wiki.train.raw"),
                  "evaluation": ("wikitext-2-raw-v1/test-00000-of-00001.parquet", "wiki.test.raw")},
    "ptb": {"calibration": ("ptb.train.txt",), "evaluation": ("ptb.test.txt",)},
}
FETCH_HINT = "maskbench datasets fetch {name}"


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed dataset argument: ``name`` (pydoc, text, json, parquet, c4, wikitext2, ptb), optional ``path``."""

    name: str
    path: str | None = None

    @property
    def recipe_name(self) -> str:
        return "split" if self.name in SPLIT_NAMES else self.name

    @property
    def from_hub(self) -> bool:
        return self.name in HUB and self.path is None

    def __str__(self) -> str:
        return self.name if self.path is None else f"{self.name}:{self.path}"


def parse_dataset(text: str) -> DatasetSpec:
    """``"c4"`` / ``"c4:PATH"`` / ``"text:PATH"`` / … → :class:`DatasetSpec`; :class:`CalibrationError` otherwise."""
    name, sep, path = str(text).partition(":")
    name = name.strip().lower()
    known = SPLIT_NAMES + tuple(HUB)
    if name not in known:
        raise CalibrationError(f"dataset {text!r}: unknown name {name!r} (choose from {', '.join(known)}, "
                               "e.g. c4, wikitext2:PATH, text:PATH)")
    if name in LOCAL_KINDS and not path:
        raise CalibrationError(f"dataset {text!r}: {name} needs a file, e.g. {name}:PATH")
    if name == "pydoc" and sep:
        raise CalibrationError(f"dataset {text!r}: pydoc is the shipped text and takes no file")
    if path:
        p = Path(path).expanduser()
        if not p.exists():
            raise CalibrationError(f"dataset {text!r}: no such file or directory {path!r}")
        path = str(p.resolve())
    return DatasetSpec(name, path or None)


# ----------------------------------------------------------------------------- local files
def read_rows(path: Path, field: str = "text", strip_lines: bool = False) -> list[str]:
    """Rows of a local file: JSON lines / JSON array (``.json``, ``.jsonl``, optionally ``.gz``),
    parquet (column ``field``), or raw text lines as the WikiText builder yields them (each line
    with its newline, blank lines as ``""``; ``strip_lines``: stripped, as the PTB builder yields them)."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return _parquet_rows(path, field)
        if any(name.endswith(s) for s in (".json", ".jsonl", ".json.gz", ".jsonl.gz")):
            return _json_rows(path, field)
        with open(path, encoding="utf-8") as fh:
            if strip_lines:
                return [line.strip() for line in fh]
            return [line if line.strip() else "" for line in fh]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CalibrationError(f"cannot read {path}: {exc}") from None


def _json_rows(path: Path, field: str) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    stripped = text.lstrip()
    records = json.loads(stripped) if stripped.startswith("[") else \
        [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = []
    for n, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get(field), str):
            raise CalibrationError(f"{path}: row {n} has no text field {field!r}")
        rows.append(rec[field])
    return rows


def _parquet_rows(path: Path, field: str) -> list[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CalibrationError(f"reading {path} needs pyarrow: pip install 'maskbench[data]'") from None
    table = pq.read_table(path)
    if field not in table.column_names:
        raise CalibrationError(f"{path}: no column {field!r} (columns: {', '.join(table.column_names)})")
    return [s if s is not None else "" for s in table.column(field).to_pylist()]


def local_file(spec: DatasetSpec, role: str) -> Path:
    """The file a local recipe spec reads for ``role`` (a file as given, or the hub layout in a directory)."""
    path = Path(spec.path)
    if path.is_file():
        return path
    for candidate in LOCAL_LAYOUT.get(spec.name, {}).get(role, ()):
        if (path / candidate).is_file():
            return path / candidate
    wanted = " or ".join(LOCAL_LAYOUT.get(spec.name, {}).get(role, ("a file",)))
    raise CalibrationError(f"dataset {spec}: directory has no {wanted} for {role}")


# ----------------------------------------------------------------------------- hub (datasets cache)
class HubRows:
    """Index access to one text field of a ``datasets.Dataset`` without copying all rows."""

    def __init__(self, dataset, field: str):
        self.dataset, self.field = dataset, field

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self.dataset[index][self.field])
        return self.dataset[index][self.field]


@functools.lru_cache(maxsize=8)
def load_hub_split(name: str, role: str, download: bool = False):
    """The ``datasets.Dataset`` of hub dataset ``name`` for ``role``, from the cache (``download``: fetch it).

    Offline without the data in the cache: one :class:`CalibrationError` line naming the dataset
    and the command that caches it.
    """
    repo, config, parts, _ = HUB[name]
    datasets = _datasets_module(online=download)
    part = parts[role]
    where = f"{repo} {part}" if config is None else f"{repo} {config} {part}"
    try:
        if config is None:  # C4: one shard of the repository, as Wanda / SparseGPT load it
            split = "train" if role == "calibration" else "validation"
            return datasets.load_dataset(repo, data_files={split: part}, split=split)
        return datasets.load_dataset(repo, config, split=part)
    except (ConnectionError, OSError, FileNotFoundError, ValueError) as exc:
        if download:
            raise CalibrationError(f"cannot fetch dataset {name} ({where}): {str(exc).splitlines()[0]}") from None
        raise CalibrationError(f"dataset {name} ({where}) is not in the Hugging Face datasets cache and nothing is "
                               f"downloaded here; cache it once with network access: {FETCH_HINT.format(name=name)}") from None


def _datasets_module(online: bool):
    """``datasets``, switched to offline mode (every prune) or online mode (only ``datasets fetch``)."""
    flag = "0" if online else "1"
    os.environ["HF_DATASETS_OFFLINE"] = flag
    if online:
        os.environ["HF_HUB_OFFLINE"] = "0"
    try:
        import datasets
        import huggingface_hub.constants as hub_constants
    except ImportError:
        raise CalibrationError("named datasets need Hugging Face datasets: pip install 'maskbench[data]'") from None
    offline = not online
    datasets.config.HF_HUB_OFFLINE = offline   # read at import: set it for this call
    hub_constants.HF_HUB_OFFLINE = offline
    return datasets


def cache_digest(dataset) -> str:
    """sha256 over the bytes of the ``datasets`` cache files a hub split was read from."""
    h = hashlib.sha256()
    for entry in sorted(f["filename"] for f in dataset.cache_files):
        h.update(Path(entry).name.encode())
        h.update(sha256_file(Path(entry)).encode())
    return h.hexdigest()
