"""Regression gate: compare two result sets task by task.

Results are matched by ``(instance_id, settings_hash)`` — the same instance under the same
solver configuration. A *quality regression* is any of:

* the objective rose by more than the tolerance, relative to the base objective
  (exact solvers: 1e-9; heuristics: ``heuristic_tol``, default 1e-3 = 0.1 %);
* the status got worse (``optimal`` > ``feasible``/``iteration_limit`` > ``time_limit`` > ``error``);
* a result of the new set failed verification (``verified`` false without an error status);
* a task of the base set is missing from the new set (unless ``allow_missing``).

Timing differences are reported (median ratio new/base per solver), never gated, and only
when both sets come from the same machine (CPU model, cores, GPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from solvers.result import STATUS_RANK

EXACT_TOL = 1e-9
DEFAULT_HEURISTIC_TOL = 1e-3


@dataclass
class Comparison:
    matched: int
    regressions: list[dict] = field(default_factory=list)
    improvements: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    new_only: int = 0
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


def compare(base: pd.DataFrame, new: pd.DataFrame, base_info: dict, new_info: dict,
            heuristic_tol: float = DEFAULT_HEURISTIC_TOL, allow_missing: bool = False) -> Comparison:
    key = ["instance_id", "settings_hash"]
    merged = base.merge(new, on=key, how="outer", suffixes=("_base", "_new"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    out = Comparison(matched=len(both), new_only=int((merged["_merge"] == "right_only").sum()))
    for _, row in merged[merged["_merge"] == "left_only"].iterrows():
        item = {"solver": row["solver_base"], "instance_id": row["instance_id"], "what": "missing in new"}
        out.missing.append(item)
        if not allow_missing:
            out.regressions.append(item)
    for _, row in both.iterrows():
        solver = row["solver_new"]
        kind = solver_kind(str(row.get("solver_name_new", row.get("solver_name_base", ""))))
        tol = EXACT_TOL if kind == "exact" else heuristic_tol
        b, n = _num(row["objective_base"]), _num(row["objective_new"])
        sb, sn = str(row["status_base"]), str(row["status_new"])
        base_item = {"solver": solver, "instance_id": row["instance_id"], "base": b, "new": n,
                     "base_status": sb, "new_status": sn}
        if STATUS_RANK.get(sn, 0) < STATUS_RANK.get(sb, 0):
            out.regressions.append({**base_item, "what": f"status {sb} -> {sn}"})
        if sn != "error" and not bool(int(_num(row.get("verified_new", 1)) or 0)):
            out.regressions.append({**base_item, "what": "verification failed"})
        if math.isfinite(b) and math.isfinite(n):
            rel = (n - b) / max(abs(b), 1e-300)
            if rel > tol:
                out.regressions.append({**base_item, "what": f"objective +{rel:.3g} (tolerance {tol:g})"})
            elif rel < -tol:
                out.improvements.append({**base_item, "what": f"objective {rel:.3g}"})
        elif math.isfinite(b) and not math.isfinite(n) and sn != "error":
            out.regressions.append({**base_item, "what": "objective missing"})
    fb, fn = tuple(base_info.get("fingerprint") or ()), tuple(new_info.get("fingerprint") or ())
    if fb and fb == fn and len(both):
        t = both.assign(ratio=(both["build_seconds_new"].fillna(0) + both["solve_seconds_new"].fillna(0))
                        / (both["build_seconds_base"].fillna(0) + both["solve_seconds_base"].fillna(0)).clip(lower=1e-9))
        out.timing = t.groupby("solver_new")["ratio"].median().rename("median time ratio new/base").to_frame()
    else:
        out.timing_note = f"timings not compared: machines differ ({fb} vs {fn})"
    return out


def markdown(result: Comparison, base_info: dict, new_info: dict) -> str:
    lines = ["# maskbench compare", "",
             f"- base: `{base_info.get('source')}` run {base_info.get('run')} (commit {base_info.get('git_commit')})",
             f"- new: `{new_info.get('source')}` run {new_info.get('run')} (commit {new_info.get('git_commit')})",
             f"- matched tasks: {result.matched}; only in new: {result.new_only}; missing in new: {len(result.missing)}",
             f"- **{'REGRESSION' if result.failed else 'OK'}**: {len(result.regressions)} regressions, "
             f"{len(result.improvements)} improvements", ""]
    for title, items in (("Regressions", result.regressions), ("Improvements", result.improvements)):
        if items:
            lines += [f"## {title}", "", "| solver | instance | what | base | new |", "|---|---|---|---|---|"]
            for it in items[:200]:
                lines.append(f"| {it['solver']} | {it['instance_id']} | {it['what']} | "
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
