"""Validation of a suite file's values, when the suite loads — before any instance or task exists.

Every check raises :class:`SuiteError` with one line naming the entry and key
(``quick.toml: solvers[2].time_limit must be a positive number of seconds, got 0``). The
rules, and why:

* A scalar where a list is allowed means a one-element list (``families = "tiny"`` is
  ``["tiny"]``, never the characters of the string).
* Numbers are checked for type and range (``dead_fraction`` in [0, 1), ``sparsity`` in (0, 1),
  dimensions ≥ 1, ``time_limit`` > 0 seconds); ``bool`` is never taken for a number.
* Solver names (and every link of a warm-start chain) must be registered: an unknown name
  fails with the closest match. ``settings`` are checked against the solver's declared
  settings (:func:`solvers.registry.validate_settings`), so a typo fails now, not in every task.
* A ``kind = "model"`` source must name a model that can be found (``optional`` defaults to
  false); a ``[[prune]]`` model likewise.
* The suite ``name`` is used in report paths, so it is restricted to ``[A-Za-z0-9][A-Za-z0-9._-]*``.

The checks never rewrite values that enter identities (solver-configuration keys, cache
hashes): they only accept or refuse, so stored results keep matching.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from bench.errors import SuiteError
from models.errors import ModelLoadError
from models.offload import OFFLOAD_CHOICES
from models.precision import DTYPE_CHOICES
from solvers.errors import MaskbenchError
from solvers.pattern import parse_pattern
from solvers.registry import parse_chain, spec, validate_settings
from solvers.synthetic import FAMILIES, SyntheticSpec

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOP_LEVEL_KEYS = {"name", "description", "instances", "solvers", "prune"}
GENERATED_KEYS = {"kind", "family", "d_in", "d_out", "sparsity", "pattern", "seeds", "dead_fraction"}
FILES_KEYS = {"kind", "path"}
MODEL_KEYS = {"kind", "model", "layers", "sparsity", "pattern", "crops", "crop_rows", "crop_cols", "full",
              "nsamples", "seqlen", "seed", "optional", "dtype", "calib_dataset", "eval_dataset"}
SOLVER_KEYS = {"name", "warm_start", "time_limit", "settings", "label", "max_d_in", "families"}
PRUNE_KEYS = {"model", "solver", "warm_start", "sparsity", "pattern", "nsamples", "seqlen", "seed",
              "eval_windows", "settings", "calib_dataset", "eval_dataset", "more_eval_datasets", "zero_shot", "zero_shot_limit",
              "zero_shot_include", "dense_check", "dsnot_layers", "dtype", "offload"}


def as_list(value: Any) -> list:
    """A list as is; any scalar (a string included) as a one-element list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


# ------------------------------------------------------------------ scalar checks
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int(where: str, value: Any, minimum: int | None = None) -> int:
    if not _is_int(value) or (minimum is not None and value < minimum):
        need = "an integer" if minimum is None else f"an integer ≥ {minimum}"
        raise SuiteError(f"{where} must be {need}, got {value!r}")
    return value


def check_fraction(where: str, value: Any, low_open: bool) -> float:
    """A number in (0, 1) when ``low_open``, else in [0, 1)."""
    ok = _is_number(value) and (0 < value < 1 if low_open else 0 <= value < 1)
    if not ok:
        raise SuiteError(f"{where} must be a number in {'(0, 1)' if low_open else '[0, 1)'}, got {value!r}")
    return float(value)


def check_str(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SuiteError(f"{where} must be a non-empty string, got {value!r}")
    return value


def check_choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SuiteError(f"{where} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SuiteError(f"{where} must be true or false, got {value!r}")
    return value


def check_list(where: str, value: Any, item: Callable[[str, Any], Any]) -> list:
    """``value`` as a list (a scalar is a one-element list), each item checked; never empty."""
    items = as_list(value)
    if not items:
        raise SuiteError(f"{where} is an empty list")
    return [item(f"{where}[{i}]" if isinstance(value, (list, tuple)) else where, v) for i, v in enumerate(items)]


def check_keys(where: str, entry: Any, allowed: set[str]) -> dict:
    if not isinstance(entry, dict):
        raise SuiteError(f"{where} must be a table, got {entry!r}")
    unknown = set(entry) - allowed
    if unknown:
        raise SuiteError(f"{where} has unknown keys {sorted(unknown)}; accepted: {', '.join(sorted(allowed))}")
    return entry


def check_tables(where: str, value: Any) -> list[dict]:
    """A TOML array of tables (``[[instances]]``)."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SuiteError(f"{where} must be an array of tables ([[{where.rsplit(': ', 1)[-1]}]]), got {value!r}")
    return value


def check_pattern(where: str, value: Any, sparsity: float = 0.5, widths: tuple[int, ...] = ()) -> str:
    """A pattern that parses, whose N:M has ``1 <= N <= M``, and that fits every input width in ``widths``."""
    check_str(where, value)
    try:
        pattern = parse_pattern(value, 1024, sparsity)
        if hasattr(pattern, "m"):  # N:M: N and M themselves, then every width it must divide
            pattern.validate(max(int(pattern.m), 1))
            for d_in in widths:
                pattern.validate(d_in)
    except (MaskbenchError, ValueError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return value


# ------------------------------------------------------------------ solvers
def check_solver_name(where: str, value: Any) -> str:
    """A registered solver or chain ``a+b``: every name registered (an unknown one suggests the closest),
    every link after the first one that takes a warm start."""
    check_str(where, value)
    try:
        parts = parse_chain(value)
        specs = [spec(part) for part in parts]
    except (MaskbenchError, ValueError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
    for s in specs[1:]:
        if not s.uses_warm_start:
            raise SuiteError(f"{where}: solver {s.name!r} ({s.kind}) does not take a warm start, so it cannot "
                             f"follow '+' in {value!r}")
    return value


def check_settings(where: str, solver: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise SuiteError(f"{where} must be a table such as {{ max_iters = 100 }}, got {value!r}")
    try:
        validate_settings(solver, value)
    except (MaskbenchError, ValueError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
    return value


def check_warm_start(where: str, solver: str, value: Any) -> str:
    """A warm-start chain for ``solver``, whose (last) solver must take a warm start."""
    check_solver_name(where, value)
    last = spec(parse_chain(solver)[-1])
    if not last.uses_warm_start:
        raise SuiteError(f"{where}: solver {last.name!r} ({last.kind}) does not take a warm start")
    return value


def check_solver_entry(where: str, cfg: Any) -> dict:
    """A ``[[solvers]]`` entry, checked; returns it with ``families`` as a list."""
    check_keys(where, cfg, SOLVER_KEYS)
    if "name" not in cfg:
        raise SuiteError(f"{where} has no 'name'")
    name = check_solver_name(f"{where}.name", cfg["name"])
    if cfg.get("warm_start") is not None:
        if len(parse_chain(name)) > 1:
            raise SuiteError(f"{where}: name {name!r} is already a chain with its warm start; give either a chain "
                             f"or warm_start")
        check_warm_start(f"{where}.warm_start", name, cfg["warm_start"])
    limit = cfg.get("time_limit")
    if limit is not None and not (_is_number(limit) and limit > 0):
        raise SuiteError(f"{where}.time_limit must be a positive number of seconds, got {limit!r}")
    check_settings(f"{where}.settings", name, cfg.get("settings", {}))
    if "label" in cfg:
        check_str(f"{where}.label", cfg["label"])
    if "max_d_in" in cfg:
        check_int(f"{where}.max_d_in", cfg["max_d_in"], 1)
    families = check_list(f"{where}.families", cfg["families"], check_str) if "families" in cfg else []
    return {**cfg, "families": families}


def check_prune_entry(where: str, entry: Any) -> dict:
    check_keys(where, entry, PRUNE_KEYS)
    solver = check_solver_name(f"{where}.solver", entry.get("solver", "wanda"))
    if entry.get("warm_start") is not None:
        check_warm_start(f"{where}.warm_start", solver, entry["warm_start"])
    sparsity = check_fraction(f"{where}.sparsity", entry.get("sparsity", 0.5), low_open=True)
    check_pattern(f"{where}.pattern", entry.get("pattern", "per-row"), sparsity)
    for key in ("nsamples", "seqlen"):
        if key in entry:
            check_int(f"{where}.{key}", entry[key], 1)
    if "seed" in entry:
        check_int(f"{where}.seed", entry["seed"])
    if entry.get("eval_windows") is not None:
        check_int(f"{where}.eval_windows", entry["eval_windows"], 1)
    check_choice(f"{where}.dtype", entry.get("dtype", "auto"), DTYPE_CHOICES)
    check_choice(f"{where}.offload", entry.get("offload", "auto"), OFFLOAD_CHOICES)
    check_settings(f"{where}.settings", solver, entry.get("settings", {}))
    check_model(f"{where}.model", entry.get("model", "default"), optional=False)
    check_protocol_keys(where, entry)
    return entry


def check_protocol_keys(where: str, entry: dict) -> None:
    """Datasets (parsed as the CLI parses them), zero-shot tasks and the protocol switches of a ``[[prune]]`` entry."""
    from models.datasets import parse_dataset

    named = [(key, entry[key]) for key in ("calib_dataset", "eval_dataset") if entry.get(key) is not None]
    if "more_eval_datasets" in entry:
        named += [("more_eval_datasets", x) for x in check_list(f"{where}.more_eval_datasets", entry["more_eval_datasets"],
                                                                 check_str)]
    for key, value in named:
        check_str(f"{where}.{key}", value)
        try:
            parse_dataset(value)
        except ValueError as exc:
            raise SuiteError(f"{where}.{key}: {exc}") from None
    if entry.get("zero_shot") is not None:
        check_str(f"{where}.zero_shot", entry["zero_shot"])
    if entry.get("zero_shot_limit") is not None:
        check_int(f"{where}.zero_shot_limit", entry["zero_shot_limit"], 1)
    if "zero_shot_include" in entry:
        check_list(f"{where}.zero_shot_include", entry["zero_shot_include"], check_str)
    if "dense_check" in entry and not isinstance(entry["dense_check"], bool):
        raise SuiteError(f"{where}.dense_check must be true or false, got {entry['dense_check']!r}")
    if entry.get("dsnot_layers", "attention") not in ("attention", "all"):
        raise SuiteError(f"{where}.dsnot_layers must be 'attention' or 'all', got {entry['dsnot_layers']!r}")


# ------------------------------------------------------------------ instance sources
def check_model(where: str, value: Any, optional: bool) -> str:
    """The model must be findable (default package, local directory or GGUF), unless ``optional``."""
    from models.loading import resolve_model

    check_str(where, value)
    try:
        resolve_model(None if value == "default" else value)
    except ModelLoadError as exc:
        if not optional:
            raise SuiteError(f"{where}: {exc} (set optional = true to skip this source when the model "
                             f"is missing)") from None
    return value


def check_generated(where: str, src: dict) -> None:
    families = check_list(f"{where}.family", src.get("family", "small"), check_str)
    for family in families:
        if family not in FAMILIES:
            raise SuiteError(f"{where}.family: unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    d_ins = check_list(f"{where}.d_in", src["d_in"], lambda w, v: check_int(w, v, 1)) if "d_in" in src else [None]
    d_outs = check_list(f"{where}.d_out", src["d_out"], lambda w, v: check_int(w, v, 1)) if "d_out" in src else [None]
    sparsities = check_list(f"{where}.sparsity", src.get("sparsity", 0.5), lambda w, v: check_fraction(w, v, True))
    check_list(f"{where}.pattern", src.get("pattern", "per-row"), check_str)
    widths = []
    for family in families:
        for d_in in d_ins:
            try:
                widths.append(SyntheticSpec(family=family, d_in=d_in).resolved()[0])
            except ValueError as exc:
                raise SuiteError(f"{where}: {exc}") from None
    for sparsity in sparsities:
        for pattern in as_list(src.get("pattern", "per-row")):
            check_pattern(f"{where}.pattern", pattern, sparsity, tuple(widths))
    check_list(f"{where}.seeds", src.get("seeds", 0), check_int)
    check_list(f"{where}.dead_fraction", src.get("dead_fraction", 0.0), lambda w, v: check_fraction(w, v, False))
    for family in families:
        for d_in in d_ins:
            for d_out in d_outs:
                try:
                    SyntheticSpec(family=family, d_in=d_in, d_out=d_out).resolved()
                except ValueError as exc:
                    raise SuiteError(f"{where}: {exc}") from None


def check_model_source(where: str, src: dict) -> None:
    if "layers" not in src:
        raise SuiteError(f"{where} needs 'layers' (glob patterns on layer names)")
    check_list(f"{where}.layers", src["layers"], check_str)
    optional = check_bool(f"{where}.optional", src.get("optional", False))
    sparsity = check_fraction(f"{where}.sparsity", src.get("sparsity", 0.5), low_open=True)
    check_pattern(f"{where}.pattern", src.get("pattern", "per-row"), sparsity)
    if "crops" in src:
        check_int(f"{where}.crops", src["crops"], 0)
    for key in ("crop_rows", "nsamples", "seqlen"):
        if key in src:
            check_int(f"{where}.{key}", src[key], 1)
    if "crop_cols" in src:
        check_list(f"{where}.crop_cols", src["crop_cols"], lambda w, v: check_int(w, v, 1))
    if "seed" in src:
        check_int(f"{where}.seed", src["seed"])
    if "full" in src:
        check_bool(f"{where}.full", src["full"])
    check_choice(f"{where}.dtype", src.get("dtype", "auto"), DTYPE_CHOICES)
    check_protocol_keys(where, {k: src[k] for k in ("calib_dataset", "eval_dataset") if k in src})
    check_model(f"{where}.model", src.get("model", "default"), optional)


def check_instance_source(where: str, src: Any) -> None:
    kinds = {"generated": GENERATED_KEYS, "files": FILES_KEYS, "model": MODEL_KEYS}
    if not isinstance(src, dict) or src.get("kind") not in kinds:
        got = src.get("kind") if isinstance(src, dict) else src
        raise SuiteError(f"{where} kind must be one of {tuple(kinds)}, got {got!r}")
    check_keys(where, src, kinds[src["kind"]])
    if src["kind"] == "generated":
        check_generated(where, src)
    elif src["kind"] == "files":
        if "path" not in src:
            raise SuiteError(f"{where}: a 'files' instance source needs a 'path'")
        check_str(f"{where}.path", src["path"])
    else:
        check_model_source(where, src)


def check_suite_name(where: str, name: Any) -> str:
    check_str(where, name)
    if not SAFE_NAME.fullmatch(name):
        raise SuiteError(f"{where} {name!r} may only hold letters, digits, '.', '_' and '-' (starting with a "
                         f"letter or digit, at most 64 characters): it names report folders")
    return name
