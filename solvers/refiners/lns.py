"""``lns``: a refiner stronger than 1-swap — tabu search over swap chains, per row.

From a warm start (default ``wanda+swap``) every row runs the tabu search of
:mod:`solvers.refiners.tabu_search`: each step applies the row's best allowed swap even when it
worsens the loss, recently moved columns are frozen for a random tenure, and the best mask
visited is kept. The neighbourhood reached this way is a chain of swaps (an ejection chain),
i.e. a large neighbourhood around the 1-swap optimum. The search runs in ``phases`` phases,
each restarting from the row's best mask with a longer tenure: phase ``p`` draws each row's
tenure from ``[t, 2t]``, ``t = (1, 2, 3)[p mod 3] · tenure``.

Why tabu chains: exact window re-solves (64 columns by ``sdpbb``, the rest folded into
linear terms) had found only 0.00–0.03 % on full q_proj rows at seconds per window (issue 12),
and enumerating 2-swaps costs ``(k(d−k))²`` ≈ 7·10⁹ pairs per 576-column row; a tabu step costs
one ``Δ`` table (``O(d·g)`` per row, or ``O(d + 64²)`` with candidates) and walks through
2-, 3-, … swaps.

Why these defaults (measured, SmolLM2-135M, pydoc calibration, crops of 4 rows × d ∈ {32, 48,
64, 96} columns of seven layers, k = d/2, optima proved by ``sdpbb``; tuned on crop seeds 1 and 2,
the benchmark's seed 0 kept apart): one phase of one tenure left some crops far from the optimum
(no single tenure closed all of them; a longer one closed some that a short one did not and vice
versa), so phases cycle through three tenures; a second round of the cycle with fresh random
tenures closed more, and more again with a patience of 80. Share of 1-swap's total excess over
the optima closed on seeds 1 + 2 (lns time / 1-swap time, both summed): 3 phases, patience 40:
89.5 % (1.0×); 3 phases, patience 80: 89.5 % (1.8×); 6 phases, patience 40: 92 % (2.0×);
6 phases, patience 80: 96 % (3.4×); multipliers 1…5 instead of the cycle, patience 40: 89.5 %
(1.6×); 1…8, patience 150: 91 % (6.8×). The
per-step cost is what made the earlier torch-only lns slow on small rows (about 0.3 ms of torch
calls per step): on the CPU the search runs in the C++ kernel ``csrc/tabu_cpu.cpp``
(:mod:`solvers.refiners.tabu_cpp`), microseconds per step.

Guarantees: every visited mask is feasible (swaps stay in their group); the result of
each row is the best visited mask, re-verified in float64 and replaced by the warm start
if it were worse (``extra["rows_reverted_to_warm_start"]``); deterministic for a given
``seed`` (the seed only draws the tenures; the C++ and torch paths run the same search, see
:mod:`solvers.refiners.tabu_search`, and the C++ path's result does not depend on the number of
threads). Works for per-row and N:M.

Settings: ``steps`` (cap on the steps of one phase of one row, default 500), ``phases`` (default
6), ``patience`` (a row's phase ends once the row found nothing better for this many steps;
default 80, None = run all steps), ``tenure`` (base tabu tenure, default ``max(3, g // 20)``,
g = group size), ``candidates`` (per-row rows wider than twice this pair only this many pruned
and kept columns per step, :mod:`solvers.refiners.tabu_search`; default 64, None = all pairs),
``chunk_rows`` (rows per call of the search, default 64; the time limit and the trace act
between chunks), ``refresh_every`` (steps between recomputations of ``c`` from scratch, 32),
``backend`` (``auto``: the C++ kernel on the CPU when it builds, torch otherwise; ``torch``;
``cpp``), ``device`` (``auto`` = CUDA when present; ``backend=cpp`` without a device means the
CPU). A ``time_limit`` stops the search (torch: at the next step; C++: within 16 steps of a row);
rows not reached keep their warm start.

Trace: ``result.trace[t] = (seconds since the solve started, total objective)`` after the
warm start (t = 0) and after each chunk of rows; ``extra["improved_rows"]`` counts rows
whose loss went down and ``extra["mean_improving_step"]`` the mean step (over all phases) of
their best mask.
"""

from __future__ import annotations

import time

import torch

from solvers.objective import check_feasible, row_objectives
from solvers.pattern import NM
from solvers.problem import MaskProblem
from solvers.refiners.cpu_kernels import choose_backend, kernel_device, load
from solvers.refiners.tabu_cpp import tabu_rows_cpu
from solvers.refiners.tabu_search import tabu_rows
from solvers.registration import register_solver, warm_row_objectives
from solvers.result import FEASIBLE, TIME_LIMIT, make_result

MAX_PHASES = 1000
"""Upper bound of ``phases``: the tenures of a row chunk are drawn for every phase before its search
(``[chunk_rows, phases]`` integers and one draw per phase); 10^7 phases took 89 s and 9.1 GB before the
first time check. The default is 6 (module docstring)."""
MAX_STEPS = 10**7


def resolve_backend(backend: str, device: torch.device) -> str:
    """``"cpp"`` (the C++ kernel, CPU) or ``"torch"``; ``"auto"`` takes cpp on the CPU when it builds."""
    return choose_backend(backend, device, "tabu", "the CPU: leave device unset or 'cpu'")


TENURE_CYCLE = (1, 2, 3)
"""Phase ``p`` uses ``TENURE_CYCLE[p mod 3]`` times the base tenure (see the module docstring)."""


def draw_tenures(rows: int, base: int, phases: int, generator: torch.Generator) -> torch.Tensor:
    """Each row's tenure in each phase, ``[rows, phases]``: phase p draws uniformly from ``[t, 2t]``,
    ``t = TENURE_CYCLE[p mod 3] · base`` (random per row so that rows do not cycle in lock step)."""
    scales = [TENURE_CYCLE[p % len(TENURE_CYCLE)] * base for p in range(phases)]
    return torch.stack([t + torch.randint(0, t + 1, (rows,), generator=generator) for t in scales], 1)


@register_solver("lns", "refiner", "tabu search over swap chains from a 1-swap optimum (never worse than its start)",
                 uses_warm_start=True, default_warm_start=("wanda+swap", "wanda"), prepare=load,
                 limits={"phases": (1, MAX_PHASES), "steps": (0, MAX_STEPS), "tenure": (1, None), "patience": (1, None),
                         "candidates": (1, None), "chunk_rows": (1, None), "refresh_every": (1, None)})
def solve_lns(problem: MaskProblem, warm_start, time_limit, seed, steps: int = 500, phases: int = 6,
              tenure: int | None = None, patience: int | None = 80, candidates: int | None = 64,
              chunk_rows: int = 64, refresh_every: int = 32, backend: str = "auto",
              device: str | None = None, progress: bool = False, memory_budget_mb: float = 512.0):
    """Tabu-chain refinement; see the module docstring for the settings.

    Peak memory beyond the problem: ``G`` in float64 on the device (``8·d_in²``), the mask copies
    (``2·d_out·d_in`` bytes), the float64 verification (:mod:`solvers.objective`) and one chunk of
    rows: ``≈ 8 · 8·chunk_rows·d_in`` bytes of row state (C++ and narrow torch path:
    ``candidates²`` per row on top), or with the full pair table of the torch path (``candidates``
    None, or N:M) ``4 · 8·rows·d_in·g`` bytes (``g`` = group size), for which ``chunk_rows`` is cut
    to fit ``memory_budget_mb``; a per-row table that alone exceeds it (a ``d_in × d_in`` table per
    row, e.g. ``candidates=None`` at d_in = 11008: 3.9 GB) is refused.
    """
    if warm_start is None:
        raise ValueError("lns refines a mask: give a warm start (solver name, chain, mask or result)")
    nm = isinstance(problem.pattern, NM)
    group = problem.pattern.m if nm else problem.d_in
    tenure = max(3, group // 20) if tenure is None else int(tenure)
    if steps < 0 or phases < 1 or tenure < 1 or chunk_rows < 1 or refresh_every < 1 \
            or (candidates is not None and candidates < 1) or (patience is not None and patience < 1):
        raise ValueError("steps must be >= 0 and phases, tenure, patience, candidates, chunk_rows, "
                         "refresh_every positive")
    dev = kernel_device(backend, device)
    search_backend = resolve_backend(backend, dev)  # may compile the C++ kernels: before the clock starts
    full_table = search_backend == "torch" and not (candidates is not None and group == problem.d_in
                                                    and problem.d_in > 2 * candidates)
    if full_table:
        per_row = 4 * 8 * problem.d_in * group                              # Q blocks, Δ and its masks
        if per_row > memory_budget_mb * 2**20:
            raise ValueError(f"lns: the torch search's pair table needs {per_row / 2**20:.0f} MB per row at d_in = "
                             f"{problem.d_in} (candidates=None): give candidates (default 64) or raise "
                             f"memory_budget_mb ({memory_budget_mb:g})")
        chunk_rows = max(1, min(chunk_rows, int(memory_budget_mb * 2**20 // per_row)))
    t_start = time.perf_counter()
    deadline = t_start + time_limit if time_limit else None
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
        tenures = draw_tenures(r1 - r0, tenure, phases, gen)
        weight = problem.weight[r0:r1].to(dev, torch.float64)
        pruned = (~keep[r0:r1]).to(dev)
        if search_backend == "cpp":
            left = None if deadline is None else deadline - time.perf_counter()
            out = tabu_rows_cpu(weight, gram, pruned, group, tenures, steps, patience, refresh_every, candidates,
                                left)
        else:
            out = tabu_rows(weight, gram, pruned, group, tenures, steps, patience, refresh_every, out_of_time,
                            candidates)
        keep[r0:r1] = ~out.pruned.cpu()
        running[r0:r1] = out.value.cpu()
        taken = max(taken, int(out.steps.max()))
        improving_steps += out.improved_at[out.improved_at > 0].tolist()
        trace.append((time.perf_counter() - t_start, float(running.sum())))
        if out.timed_out or out_of_time():
            status = TIME_LIMIT
    final_rows = row_objectives(problem, keep)
    worse = final_rows > warm_rows
    if bool(worse.any()):
        keep[worse] = warm[worse]
    extra = {"rows_reverted_to_warm_start": int(worse.sum()), "device": str(dev),
             "improved_rows": len(improving_steps),
             "mean_improving_step": (sum(improving_steps) / len(improving_steps)) if improving_steps else None}
    settings = {"steps": steps, "phases": phases, "patience": patience, "tenure": tenure, "candidates": candidates,
                "chunk_rows": chunk_rows, "refresh_every": refresh_every, "backend": search_backend,
                "device": str(dev), "memory_budget_mb": memory_budget_mb}
    return make_result(problem, keep, "lns", status, iterations=taken, trace=trace, extra=extra,
                       settings=settings, solve_seconds=time.perf_counter() - t_start)
