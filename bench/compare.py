"""Regression gate: compare two result sets task by task.

Matching
--------
Results are matched by ``(instance_key, settings_hash)`` — the same instance, by its portable
key (:func:`solvers.identity.portable_key`: provenance, not float bytes, so a run on another CPU
matches), under the same solver configuration. Under one key the instances' numeric
fingerprints must agree (:func:`solvers.identity.same_content`, relative 1e-9; model-derived
instances :data:`FLOAT32_ORIGIN_RTOL`); if they do not, the instance's content changed (other
generator, weights or calibration) and that is a regression unless ``allow_content_change``.

A *quality regression* is any of:

* the objective rose by more than the tolerance, relative to the base objective:
  proven optima (exact solver, both ``optimal``) :data:`EXACT_TOL`, widened to the solver's own
  optimality tolerance ``gap_tol`` when it reports one (an "optimal" row is only proven to within
  it); everything else (heuristics, and exact solvers stopped early) ``heuristic_tol``,
  default :data:`DEFAULT_HEURISTIC_TOL`; on model-derived instances never below
  :data:`FLOAT32_ORIGIN_RTOL`;
* the status got worse (``optimal`` > ``feasible``/``iteration_limit`` > ``time_limit`` > ``error``);
* a result of the new set failed verification (``verified`` false without an error status);
* a task of the base set is missing from the new set (unless ``allow_missing``);
* the instance content changed under the same key (unless ``allow_content_change``).

The gate never passes vacuously: :class:`CompareError` (exit 2 in the CLI) when either side is
empty, the two sides come from different suites (name or content hash), a side holds the same
task twice, nothing matched, no matched task has finite objectives on both sides, or a tolerance
is negative or not finite.

Whole-model pruning rows (perplexities) are not part of a comparison: a perplexity is the
end of a chain of heuristic decisions over every layer and moves by percents across CPUs.

Timing differences are reported (median ratio new/base per solver), never gated, and only
when both sets come from the same machine (CPU model, cores, GPU).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from bench.errors import CompareError
from solvers.identity import FINGERPRINT_RTOL, same_content
from solvers.result import STATUS_RANK

EXACT_TOL = 1e-9
"""Relative tolerance for proven optima on float64 instances: ~10⁵× their cross-CPU noise (measured
≤ 4.1e-15 on the quick suite with G moved by 4 ulps), 10⁷× below a 1 % regression."""
DEFAULT_HEURISTIC_TOL = 1e-3
"""Relative tolerance for heuristic paths (0.1 %). Measured divergence on the quick suite: ≤ 3e-15
with G moved by 4 ulps (no heuristic took another tie), ≤ 2.2e-7 on model crops under other kernels;
0.1 % leaves room for a tie taken differently, and a 1 % regression still fails."""
FLOAT32_ORIGIN_RTOL = 1e-5
"""Relative noise allowance of instances computed through a float32 model forward pass (model-derived:
``model`` in their metadata). Another CPU's kernels move their G, and so every objective on them, far
beyond float64 rounding: measured on the quick suite's SmolLM2 crops with ATen's default kernels instead
of AVX2 and MKL in ``CBWR=COMPATIBLE`` mode, fingerprints moved by up to 3.3e-7 and objectives (proven
optima included) by up to 2.2e-7. 1e-5 is 30× that and 1000× below a 1 % regression. It is the
fingerprint tolerance for such instances and a floor of their objective tolerance."""
KEY = ["instance_key", "settings_hash"]


@dataclass
class Comparison:
    matched: int
    regressions: list[dict] = field(default_factory=list)
    improvements: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    new_only: int = 0
    content_changed: list[dict] = field(default_factory=list)
    timing: pd.DataFrame | None = None
    timing_note: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.regressions)


def solver_kind(name: str) -> str:
    from solvers.registry import UnknownSolverError, spec

    try:
        return spec(name).kind
    except UnknownSolverError:
        return "heuristic"


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def _known(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and str(x) not in ("", "nan", "<NA>")


def check_tolerance(name: str, value: float) -> float:
    """``value`` if it is a finite number ≥ 0, else :class:`CompareError`."""
    tol = _num(value)
    if not math.isfinite(tol) or tol < 0:
        raise CompareError(f"{name} must be a finite number >= 0, got {value!r}")
    return tol


def check_comparable(base: pd.DataFrame, new: pd.DataFrame, base_info: dict, new_info: dict) -> None:
    """:class:`CompareError` unless both sides hold results of the same suite, each task once."""
    for side, frame, info in (("base", base, base_info), ("new", new, new_info)):
        if frame.empty:
            raise CompareError(f"{side} {info.get('source')} (run {info.get('run')}) holds no results to compare")
    bs, ns = base_info.get("suite"), new_info.get("suite")
    if _known(bs) and _known(ns) and str(bs) != str(ns):
        raise CompareError(f"different suites: base is {bs!r}, new is {ns!r}; compare runs of one suite")
    bh, nh = base_info.get("suite_hash"), new_info.get("suite_hash")
    if _known(bh) and _known(nh) and str(bh) != str(nh):
        raise CompareError(f"suite {bs!r} differs between the two sets (content hash {bh} vs {nh}); "
                           "rerun both with one suite file, or refresh the baseline")
    for side, frame, info in (("base", base, base_info), ("new", new, new_info)):
        dupes = frame[frame.duplicated(KEY, keep=False)]
        if not dupes.empty:
            first = dupes.iloc[0]
            raise CompareError(f"{side} {info.get('source')} holds {len(dupes)} rows for "
                               f"{dupes.drop_duplicates(KEY).shape[0]} tasks (e.g. {first['solver']} on "
                               f"{first['instance_key']}); a source must hold each task once (one run)")


def _fingerprint(text) -> tuple[float, ...] | None:
    if not _known(text):
        return None
    try:
        return tuple(float(x) for x in json.loads(text))
    except (TypeError, ValueError):
        return None


def _gap_tol(row, suffix: str) -> float:
    try:
        return _num(json.loads(row.get(f"extra_json{suffix}") or "{}").get("gap_tol"))
    except (TypeError, ValueError, AttributeError):
        return math.nan


def content_noise(row) -> float:
    """How far the instance's numbers may move on another machine, relative: :data:`FLOAT32_ORIGIN_RTOL`
    for model-derived instances, else 0 (float64 from end to end: rounding only)."""
    for suffix in ("_base", "_new"):
        try:
            info = json.loads(row.get(f"instance_json{suffix}") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(info, dict) and "model" in info:
            return FLOAT32_ORIGIN_RTOL
    return 0.0


def objective_tolerance(row, kind: str, heuristic_tol: float) -> float:
    """The relative objective tolerance of one matched task (see module docstring)."""
    proven = kind == "exact" and str(row["status_base"]) == "optimal" and str(row["status_new"]) == "optimal"
    if not proven:
        return max(heuristic_tol, content_noise(row))
    gaps = [g for g in (_gap_tol(row, "_base"), _gap_tol(row, "_new")) if math.isfinite(g) and g >= 0]
    return max([EXACT_TOL, content_noise(row), *gaps])


def compare(base: pd.DataFrame, new: pd.DataFrame, base_info: dict, new_info: dict,
            heuristic_tol: float = DEFAULT_HEURISTIC_TOL, allow_missing: bool = False,
            allow_content_change: bool = False) -> Comparison:
    heuristic_tol = check_tolerance("the heuristic tolerance", heuristic_tol)
    check_comparable(base, new, base_info, new_info)
    merged = base.merge(new, on=KEY, how="outer", suffixes=("_base", "_new"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    if both.empty:
        hint = ""
        if any(not frame["instance_key"].astype(str).str.startswith("prov:").any() for frame in (base, new)):
            hint = (" (one side has content keys only: results stored before portable keys, or instance files "
                    "without provenance; rerun the suite and export it again)")
        raise CompareError(
            f"no task matched: base has {len(base)} results, new has {len(new)}, none with the same "
            f"(instance key, solver configuration); nothing was compared{hint}")
    finite = [math.isfinite(_num(b)) and math.isfinite(_num(n)) for b, n in zip(both["objective_base"], both["objective_new"])]
    if not any(finite):
        raise CompareError(
            f"none of the {len(both)} matched tasks has a finite objective on both sides (base or new objectives "
            f"are all NaN, infinite or missing); nothing was compared")
    out = Comparison(matched=len(both), new_only=int((merged["_merge"] == "right_only").sum()))
    for _, row in merged[merged["_merge"] == "left_only"].iterrows():
        item = {"solver": row["solver_base"], "instance_key": row["instance_key"], "what": "missing in new"}
        out.missing.append(item)
        if not allow_missing:
            out.regressions.append(item)
    for _, row in both.iterrows():
        _compare_task(row, heuristic_tol, allow_content_change, out)
    _timing(both, base_info, new_info, out)
    return out


def _compare_task(row, heuristic_tol: float, allow_content_change: bool, out: Comparison) -> None:
    solver = row["solver_new"]
    kind = solver_kind(str(row.get("solver_name_new", row.get("solver_name_base", ""))))
    tol = objective_tolerance(row, kind, heuristic_tol)
    b, n = _num(row["objective_base"]), _num(row["objective_new"])
    sb, sn = str(row["status_base"]), str(row["status_new"])
    item = {"solver": solver, "instance_key": row["instance_key"], "base": b, "new": n,
            "base_status": sb, "new_status": sn}
    fb, fn = _fingerprint(row.get("fingerprint_json_base")), _fingerprint(row.get("fingerprint_json_new"))
    if fb is not None and fn is not None and not same_content(fb, fn, max(FINGERPRINT_RTOL, content_noise(row))):
        changed = {**item, "what": "instance content changed (fingerprints differ under the same key)"}
        out.content_changed.append(changed)
        if not allow_content_change:
            out.regressions.append(changed)
    if STATUS_RANK.get(sn, 0) < STATUS_RANK.get(sb, 0):
        out.regressions.append({**item, "what": f"status {sb} -> {sn}"})
    if sn != "error" and not bool(int(_num(row.get("verified_new", 1)) or 0)):
        out.regressions.append({**item, "what": "verification failed"})
    if math.isfinite(b) and math.isfinite(n):
        rel = (n - b) / max(abs(b), 1e-300)
        if rel > tol:
            out.regressions.append({**item, "what": f"objective +{rel:.3g} (tolerance {tol:g})"})
        elif rel < -tol:
            out.improvements.append({**item, "what": f"objective {rel:.3g}"})
    elif math.isfinite(b) and not math.isfinite(n) and sn != "error":
        out.regressions.append({**item, "what": "objective missing"})


def _timing(both: pd.DataFrame, base_info: dict, new_info: dict, out: Comparison) -> None:
    fb, fn = tuple(base_info.get("fingerprint") or ()), tuple(new_info.get("fingerprint") or ())
    if not fb or not fn:
        out.timing_note = "timings not compared: the machine of " + ("base" if not fb else "new") + " is unknown"
    elif fb != fn:
        out.timing_note = f"timings not compared: machines differ ({fb} vs {fn})"
    else:
        seconds = {s: both[f"build_seconds{s}"].fillna(0) + both[f"solve_seconds{s}"].fillna(0)
                   for s in ("_base", "_new")}
        t = both.assign(ratio=seconds["_new"] / seconds["_base"].clip(lower=1e-9))
        out.timing = t.groupby("solver_new")["ratio"].median().rename("median time ratio new/base").to_frame()


def markdown(result: Comparison, base_info: dict, new_info: dict) -> str:
    lines = ["# maskbench compare", "",
             f"- base: `{base_info.get('source')}` run {base_info.get('run')} (commit {base_info.get('git_commit')})",
             f"- new: `{new_info.get('source')}` run {new_info.get('run')} (commit {new_info.get('git_commit')})",
             f"- matched tasks: {result.matched} (by portable instance key and solver configuration); "
             f"only in new: {result.new_only}; missing in new: {len(result.missing)}; "
             f"instance content changed: {len(result.content_changed)}",
             f"- **{'REGRESSION' if result.failed else 'OK'}**: {len(result.regressions)} regressions, "
             f"{len(result.improvements)} improvements", ""]
    for title, items in (("Regressions", result.regressions), ("Improvements", result.improvements)):
        if items:
            lines += [f"## {title}", "", "| solver | instance | what | base | new |", "|---|---|---|---|---|"]
            for it in items[:200]:
                lines.append(f"| {it['solver']} | {it['instance_key']} | {it['what']} | "
                             f"{it.get('base', '')} {it.get('base_status', '')} | {it.get('new', '')} {it.get('new_status', '')} |")
            if len(items) > 200:
                lines.append(f"| … | {len(items) - 200} more | | | |")
            lines.append("")
    lines.append("## Timing (reported, never gated)")
    lines.append("")
    if result.timing is not None:
        lines.append(result.timing.to_markdown())
    else:
        lines.append(result.timing_note)
    return "\n".join(lines) + "\n"
