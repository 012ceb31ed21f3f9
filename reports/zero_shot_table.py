"""Zero-shot accuracy tables as the pruning papers print them: method × task, plus the mean.

Input: stored zero-shot results only — per run the JSON ``{"dense": R, "pruned": R}`` with
``R = {"harness", "limit", "tasks": {task: {"acc", "acc_norm", …}}, …}`` (the ``zero_shot_json``
column of a prune row, or the ``zero_shot`` value of ``maskbench prune --json``). Accuracies are
printed in percent with two decimals; ``Mean`` is the unweighted mean over the table's tasks,
empty when a task is missing for that row. The dense model is the first row (one per table: the
dense results of the first run that has them).
"""

from __future__ import annotations

import json

import pandas as pd


def parse_zero_shot(value) -> dict:
    """A stored ``zero_shot_json`` value (string, dict or NULL) → ``{"dense": R, "pruned": R}`` or ``{}``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _cells(result: dict, tasks: list[str], metric: str) -> dict[str, str]:
    per_task = result.get("tasks", {})
    values = [per_task.get(t, {}).get(metric) for t in tasks]
    row = {t: ("" if v is None else f"{100 * v:.2f}") for t, v in zip(tasks, values)}
    row["Mean"] = "" if not values or any(v is None for v in values) else f"{100 * sum(values) / len(values):.2f}"
    return row


def zero_shot_table_from(results: list[tuple[str, dict]], metric: str = "acc") -> pd.DataFrame:
    """Rows ``(label, R)`` → the table (``method``, one column per task in first-seen order, ``Mean``)."""
    tasks: list[str] = []
    for _, result in results:
        for task in result.get("tasks", {}):
            if task not in tasks:
                tasks.append(task)
    if not tasks:
        return pd.DataFrame()
    rows = [{"method": label, **_cells(result, tasks, metric)} for label, result in results]
    return pd.DataFrame(rows, columns=["method", *tasks, "Mean"])


def zero_shot_table(runs: pd.DataFrame, metric: str = "acc") -> pd.DataFrame:
    """From prepared prune rows (:func:`reports.data.prepare_prune`, with ``zero_shot_json``): dense first,
    then one row per ``method @ setting`` (the first stored run of each)."""
    if runs is None or runs.empty or "zero_shot_json" not in runs:
        return pd.DataFrame()
    results: list[tuple[str, dict]] = []
    seen: set[str] = set()
    for _, run in runs.iterrows():
        zs = parse_zero_shot(run["zero_shot_json"])
        if not zs.get("pruned"):
            continue
        if not results and zs.get("dense"):
            results.append(("dense", zs["dense"]))
        label = f"{run['method']} @ {run['setting']}"
        if label not in seen:
            seen.add(label)
            results.append((label, zs["pruned"]))
    return zero_shot_table_from(results, metric)


def format_zero_shot_text(results: dict[str, dict], metric: str = "acc") -> str:
    """Plain-text table for the terminal: ``{label: R}`` → aligned columns (accuracy in %)."""
    table = zero_shot_table_from(list(results.items()), metric)
    if table.empty:
        return ""
    harness = next((r.get("harness") for r in results.values() if r.get("harness")), "lm-eval")
    limit = next((r.get("limit") for r in results.values()), None)
    head = f"zero-shot {metric} (%), {harness}, 0-shot" + (f", limit {limit} per task" if limit else "")
    return head + "\n" + table.to_string(index=False)
