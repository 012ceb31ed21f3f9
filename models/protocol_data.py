"""Calibration windows and evaluation ids from two dataset arguments, with the record that reproduces them.

:func:`prepare_datasets` is the one entry point of the pipeline: the calibration dataset gives
``nsamples`` windows of ``seqlen`` tokens, the evaluation dataset the ids whose non-overlapping
``seqlen`` windows the perplexity is measured on (:mod:`models.perplexity`). Named datasets and
``NAME:PATH`` follow the released recipes (:mod:`models.recipes`); ``pydoc`` / ``text:`` /
``json:`` / ``parquet:`` follow maskbench's split recipe (:mod:`models.calibration`), where one
corpus gives both, on disjoint parts. When the evaluation dataset is not given it is the
calibration dataset (its evaluation split: C4 validation, WikiText-2 test, the held-out part).

The :class:`DataRecord` keeps what a rerun needs: the dataset arguments, the files read and the
sha256 of their bytes, the splits, the joining rules, nsamples, seqlen, seed, token counts and the
number of evaluation windows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from models.calibration import CalibrationData, Corpus, load_corpus, sample_windows, split_tokens, tokenize
from models.datasets import (
    HUB,
    DatasetSpec,
    HubRows,
    cache_digest,
    load_hub_split,
    local_file,
    parse_dataset,
    read_rows,
)
from models.digests import sha256_file
from models.errors import CalibrationError
from models.recipes import RECIPES, calibration_windows, evaluation_ids

DEFAULT_DATASET = "pydoc"


@dataclass
class Source:
    """The rows one role reads: where from, which split, and the digests of the files."""

    rows: object
    split: str
    files: dict[str, str] = field(default_factory=dict)   # file name or path → sha256


@dataclass
class DataRecord:
    """Everything needed to rebuild the windows; ``metadata()`` is what instances and results carry."""

    calibration: str                  # dataset argument (pydoc_data.topics for the shipped default)
    evaluation: str
    nsamples: int
    seqlen: int
    seed: int
    propagation: str
    eval_fraction: float | None       # split recipe only
    calibration_tokens: int
    eval_tokens: int
    eval_windows: int                 # non-overlapping seqlen windows in the evaluation ids
    calibration_split: str = ""
    evaluation_split: str = ""
    calibration_rule: str = ""
    evaluation_rule: str = ""
    calibration_files: dict[str, str] = field(default_factory=dict)
    evaluation_files: dict[str, str] = field(default_factory=dict)

    def metadata(self) -> dict[str, str]:
        """Flat strings (dict values as JSON) for provenance metadata and the ``protocol`` record."""
        return {k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else str(v)
                for k, v in asdict(self).items() if v not in (None, "", {})}


def _split_corpus(spec: DatasetSpec) -> tuple[Corpus, dict[str, str]]:
    if spec.name == "pydoc":
        return load_corpus(None), {}
    path = Path(spec.path)
    if spec.name == "text":
        corpus = load_corpus([str(path)])
    else:
        rows = read_rows(path)
        if not rows:
            raise CalibrationError(f"dataset {spec}: no rows")
        corpus = Corpus("\n\n".join(rows), path.name)
    return corpus, {path.name: sha256_file(path)}


def _recipe_source(spec: DatasetSpec, role: str, download: bool = False) -> Source:
    field_name = HUB[spec.name][3] if spec.name == "ptb" else "text"
    if spec.from_hub:
        dataset = load_hub_split(spec.name, role, download)
        repo, config, parts, _ = HUB[spec.name]
        split = " ".join(x for x in (repo, config, parts[role]) if x)
        return Source(HubRows(dataset, field_name), split, {f"datasets-cache:{split}": cache_digest(dataset)})
    path = local_file(spec, role)
    rows = read_rows(path, field_name, strip_lines=spec.name == "ptb")
    if not rows:
        raise CalibrationError(f"dataset {spec}: {path} has no rows")
    return Source(rows, str(path), {str(path): sha256_file(path)})


@dataclass
class Evaluation:
    """Evaluation ids of one dataset argument and how they were made."""

    name: str
    ids: torch.Tensor
    split: str
    rule: str
    files: dict[str, str]

    def record(self, seqlen: int) -> dict:
        return {"dataset": self.name, "split": self.split, "rule": self.rule, "files": self.files,
                "tokens": len(self.ids), "windows": len(self.ids) // seqlen}


def evaluation_data(tokenizer, spec: DatasetSpec | str, seqlen: int, eval_fraction: float = 0.1) -> Evaluation:
    """The evaluation ids of ``spec`` alone (split recipe: the held-out part; named recipes: their test split)."""
    spec = parse_dataset(spec) if isinstance(spec, str) else spec
    if spec.recipe_name == "split":
        corpus, files = _split_corpus(spec)
        _, ids = split_tokens(tokenize(tokenizer, corpus.text), eval_fraction)
        out = Evaluation(corpus.source, ids, f"last {eval_fraction:g} of the tokens", "documents joined by blank lines",
                         files)
    else:
        recipe = RECIPES[spec.name]
        source = _recipe_source(spec, "evaluation")
        ids = evaluation_ids(recipe, source.rows, tokenizer, seqlen)
        out = Evaluation(str(spec), ids, source.split, recipe.describe()["evaluation_rule"], source.files)
    if len(out.ids) < seqlen:
        raise CalibrationError(f"evaluation data {spec} has {len(out.ids)} tokens, fewer than seqlen={seqlen}")
    out.ids = torch.as_tensor(out.ids, dtype=torch.long).reshape(-1)
    return out


def prepare_datasets(tokenizer, calib: str | None, evaluation: str | None, nsamples: int, seqlen: int, seed: int,
                     propagation: str, eval_fraction: float = 0.1) -> CalibrationData:
    """Calibration windows ``[nsamples, seqlen]`` and evaluation ids ``[n]`` with their :class:`DataRecord`."""
    c_spec = parse_dataset(calib or DEFAULT_DATASET)
    e_spec = parse_dataset(evaluation) if evaluation else c_spec
    if evaluation is None and c_spec.name in RECIPES and c_spec.path and Path(c_spec.path).is_file():
        raise CalibrationError(f"--calib-dataset {c_spec} names one file (the calibration split); "
                               f"name the evaluation data with --eval-dataset")
    same_corpus = c_spec == e_spec and c_spec.recipe_name == "split"
    c_fraction = eval_fraction if c_spec.recipe_name == "split" else None
    if c_spec.recipe_name == "split":
        corpus, c_files = _split_corpus(c_spec)
        calib_part, held = split_tokens(tokenize(tokenizer, corpus.text), eval_fraction)
        windows = sample_windows(calib_part, nsamples, seqlen, seed)
        c_name, c_split, c_rule = corpus.source, f"first {1 - eval_fraction:g} of the tokens", \
            "documents joined by blank lines, random window"
        c_tokens = len(calib_part)
    else:
        recipe = RECIPES[c_spec.name]
        source = _recipe_source(c_spec, "calibration")
        windows = calibration_windows(recipe, source.rows, tokenizer, nsamples, seqlen, seed)
        c_name, c_split, c_rule, c_files = str(c_spec), source.split, recipe.describe()["calibration_rule"], source.files
        c_tokens, held = int(windows.numel()), None
    if same_corpus:
        e_ids, e_split, e_rule, e_files, e_name = held, f"last {eval_fraction:g} of the tokens", \
            "documents joined by blank lines", c_files, c_name
    else:
        e = evaluation_data(tokenizer, e_spec, seqlen, eval_fraction)
        e_ids, e_split, e_rule, e_files, e_name = e.ids, e.split, e.rule, e.files, e.name
        if e_spec.recipe_name == "split":
            c_fraction = eval_fraction
    if len(e_ids) < seqlen:
        raise CalibrationError(f"evaluation data {e_spec} has {len(e_ids)} tokens, fewer than seqlen={seqlen}")
    record = DataRecord(c_name, e_name, nsamples, seqlen, seed, propagation, c_fraction, c_tokens, len(e_ids),
                        len(e_ids) // seqlen, c_split, e_split, c_rule, e_rule, c_files, e_files)
    return CalibrationData(windows, torch.as_tensor(e_ids, dtype=torch.long).reshape(-1), record)


def preflight(calib: str | None, evaluation: str | None, extra: tuple[str, ...] = ()) -> None:
    """Fail before the model is loaded: parse the arguments and open hub data in the cache (kept for later)."""
    c_spec = parse_dataset(calib or DEFAULT_DATASET)
    e_spec = parse_dataset(evaluation) if evaluation else c_spec
    pairs = [(c_spec, "calibration"), (e_spec, "evaluation")] + [(parse_dataset(x), "evaluation") for x in extra]
    for spec, role in pairs:
        if spec.from_hub:
            load_hub_split(spec.name, role)


def model_max_positions(model) -> int:
    """The model's maximum positions (``max_position_embeddings``, GPT-2's ``n_positions``): Wanda's ``model.seqlen``."""
    config = model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    raise CalibrationError(f"{type(model).__name__}: no maximum positions in its config; give --seqlen")


def fetch(name: str) -> list[str]:
    """Download hub dataset ``name`` (both roles) into the ``datasets`` cache; the splits fetched."""
    spec = parse_dataset(name)
    if not spec.from_hub:
        raise CalibrationError(f"dataset {name!r}: only {', '.join(HUB)} are fetched from the hub")
    done = []
    for role in ("calibration", "evaluation"):
        dataset = load_hub_split(spec.name, role, download=True)
        done.append(f"{spec.name} {role}: {len(dataset)} rows")
    return done
