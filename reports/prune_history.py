"""History of whole-model runs: per stored run and method, the perplexities and the zero-shot mean.

Input: :func:`bench.history.prune_history_frame`'s plain frame (stored results only). The
zero-shot columns are the mean ``acc`` over the run's tasks (in %) of the dense and the pruned
model, with the task count, so runs with other task lists are not mistaken for one another.
"""

from __future__ import annotations

import pandas as pd

from reports.zero_shot_table import parse_zero_shot

COLUMNS = ("run", "started", "commit", "method", "setting", "status", "dense ppl", "pruned ppl",
           "zero-shot tasks", "dense acc %", "pruned acc %")


def _mean(result: dict | None) -> str:
    tasks = (result or {}).get("tasks", {})
    values = [t.get("acc") for t in tasks.values()]
    if not values or any(v is None for v in values):
        return ""
    return f"{100 * sum(values) / len(values):.2f}"


def prune_history_table(frame: pd.DataFrame) -> pd.DataFrame:
    from reports.data import prune_setting

    rows = []
    for _, r in frame.iterrows():
        zs = parse_zero_shot(r.get("zero_shot_json"))
        tasks = (zs.get("pruned") or zs.get("dense") or {}).get("tasks", {})
        rows.append({"run": str(r["run_id"]), "started": r["started"], "commit": str(r["git_commit"])[:10],
                     "method": r["method"], "setting": prune_setting(r["pattern"], r["sparsity"]),
                     "status": r["status"],
                     "dense ppl": "" if pd.isna(r["dense_ppl"]) else f"{float(r['dense_ppl']):.2f}",
                     "pruned ppl": "" if pd.isna(r["pruned_ppl"]) else f"{float(r['pruned_ppl']):.2f}",
                     "zero-shot tasks": ",".join(tasks), "dense acc %": _mean(zs.get("dense")),
                     "pruned acc %": _mean(zs.get("pruned"))})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def prune_history_markdown(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    return "## Whole-model runs\n\n" + table.to_markdown(index=False) + "\n"
