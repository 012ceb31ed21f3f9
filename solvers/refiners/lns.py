"""``lns``: a refiner stronger than 1-swap — tabu search over swap chains, per row.

From a warm start (default ``wanda+swap``) every row runs ``steps`` steps of the tabu
search of :mod:`solvers.refiners.tabu_search`: each step applies the row's best allowed
swap even when it worsens the loss, recently moved columns are frozen for a random
tenure, and the best mask visited is kept. The neighbourhood reached this way is a
chain of swaps (an ejection chain), i.e. a large neighbourhood around the 1-swap optimum.

Why tabu chains: exact window re-solves (64 columns by ``sdpbb``, the rest folded into
linear terms) had found only 0.00–0.03 % on full q_proj rows at seconds per window (issue 12),
and enumerating 2-swaps costs ``(k(d−k))²`` ≈ 7·10⁹ pairs per 576-column row; a tabu step costs
one batched ``Δ`` table (``O(d·g)`` per row, or ``O(d + 64²)`` with candidates) and walks through
2-, 3-, … swaps. Measured (SmolLM2-135M, pydoc calibration, k = d/2, one thread, shared
machine; ``python -m bench.gap_bracket``, README): on real crops (4 rows, d = 32–96, six layer
types, 24 crops proved by ``sdpbb``) lns closed 74 % of 1-swap's total excess over the optima
at 7.6× 1-swap's solve time, reaching the optimum wherever 1-swap missed it except k_proj
d = 64, v_proj d = 96, gate_proj d = 96 and the o_proj crops (7.7 → 0.46 %, 5.9 → 3.5 %,
6.9 → 1.3 % above the optimum at d = 48, 64, 96); on full layers it lowered 1-swap's loss by
0.8–2.1 % (per-row 50 %) and 0.4–1.5 % (2:4). The tenure is the sensitive knob on those
crops: base 5 instead of 3 closed 94 % (7.4×), base 6 closed 65 %; patience 12 with base 5
closed 74 % at 3.2× — the defaults were not tuned to these 24 crops.

Guarantees: every visited mask is feasible (swaps stay in their group); the result of
each row is the best visited mask, re-verified in float64 and replaced by the warm start
if it were worse (``extra["rows_reverted_to_warm_start"]``); deterministic for a given
``seed`` on a given device (the seed only draws the tenures). Works for per-row and N:M.

Settings: ``steps`` (tabu steps per row; default 100 for per-row, 50 for N:M),
``patience`` (a chunk of rows stops once none of its rows improved for this many steps;
default 25, None = run all steps), ``tenure`` (base tabu tenure, default
``max(3, g // 20)``), ``candidates`` (per-row rows wider than twice this pair only this
many pruned and kept columns per step, :mod:`solvers.refiners.tabu_search`; default 64,
None = all pairs), ``chunk_rows`` (rows searched together, default 64),
``device`` (``auto`` = CUDA when present). A ``time_limit`` stops the search at the next
step; rows of unsearched chunks keep their warm start.

Trace: ``result.trace[t] = (seconds since the solve started, total objective)`` after the
warm start (t = 0) and after each chunk of rows; ``extra["improved_rows"]`` counts rows
whose loss went down and ``extra["mean_improving_step"]`` the mean step of their best mask.
"""

from __future__ import annotations

import time

import torch

from solvers.objective import check_feasible, row_objectives
from solvers.pattern import NM
from solvers.problem import MaskProblem
from solvers.refiners.swap import pick_device
from solvers.refiners.tabu_search import tabu_rows
from solvers.registration import register_solver, warm_row_objectives
from solvers.result import FEASIBLE, TIME_LIMIT, make_result


def default_steps(d_in: int, nm: bool) -> int:
    """Steps per row when the caller gives none (see the module docstring)."""
    return 50 if nm else 100


@register_solver("lns", "refiner", "tabu search over swap chains from a 1-swap optimum (never worse than its start)",
                 uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"))
def solve_lns(problem: MaskProblem, warm_start, time_limit, seed, steps: int | None = None,
              tenure: int | None = None, candidates: int | None = 64, patience: int | None = 25,
              chunk_rows: int = 64, refresh_every: int = 32,
              device: str | None = None, progress: bool = False):
    """Tabu-chain refinement; see the module docstring for the settings."""
    if warm_start is None:
        raise ValueError("lns refines a mask: give a warm start (solver name, chain, mask or result)")
    nm = isinstance(problem.pattern, NM)
    group = problem.pattern.m if nm else problem.d_in
    steps = default_steps(problem.d_in, nm) if steps is None else int(steps)
    tenure = max(3, group // 20) if tenure is None else int(tenure)
    if steps < 0 or tenure < 1 or chunk_rows < 1 or refresh_every < 1 or (candidates is not None and candidates < 1):
        raise ValueError("steps must be >= 0 and tenure, candidates, chunk_rows, refresh_every positive")
    t_start = time.perf_counter()
    deadline = t_start + time_limit if time_limit else None
    dev = pick_device(device)
    warm = check_feasible(problem, warm_start.mask)
    keep = warm.clone()
    gram = problem.gram.to(dev, torch.float64)
    gen = torch.Generator().manual_seed(int(seed))
    trace = [(0.0, float(warm_start.objective))]
    warm_rows = warm_row_objectives(problem, warm_start)
    running = warm_rows.clone()
    status, taken, improving_steps = FEASIBLE, 0, []

    def out_of_time() -> bool:
        return deadline is not None and time.perf_counter() >= deadline

    chunks = range(0, problem.d_out, chunk_rows)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="lns rows", unit="chunk", leave=False)
    for r0 in chunks:
        if out_of_time():
            status = TIME_LIMIT
            break
        r1 = min(r0 + chunk_rows, problem.d_out)
        weight = problem.weight[r0:r1].to(dev, torch.float64)
        pruned = (~keep[r0:r1]).to(dev)
        out = tabu_rows(weight, gram, pruned, group, steps, tenure, gen, refresh_every, out_of_time, candidates,
                        patience)
        keep[r0:r1] = ~out.pruned.cpu()
        running[r0:r1] = out.value.cpu()
        taken = max(taken, out.steps)
        improving_steps += out.improved_at[out.improved_at > 0].tolist()
        trace.append((time.perf_counter() - t_start, float(running.sum())))
        if out_of_time():
            status = TIME_LIMIT
    final_rows = row_objectives(problem, keep)
    worse = final_rows > warm_rows
    if bool(worse.any()):
        keep[worse] = warm[worse]
    extra = {"rows_reverted_to_warm_start": int(worse.sum()), "device": str(dev),
             "improved_rows": len(improving_steps),
             "mean_improving_step": (sum(improving_steps) / len(improving_steps)) if improving_steps else None}
    settings = {"steps": steps, "patience": patience, "tenure": tenure, "candidates": candidates, "chunk_rows": chunk_rows,
                "refresh_every": refresh_every, "device": str(dev)}
    return make_result(problem, keep, "lns", status, iterations=taken, trace=trace, extra=extra,
                       settings=settings, solve_seconds=time.perf_counter() - t_start)
