"""CPU path of the lns tabu search: the C++ kernel ``csrc/tabu_cpu.cpp`` on row ranges in threads.

The search is the one of :mod:`solvers.refiners.tabu_search` (phases, tenures, patience,
aspiration, candidates, ties), run one row at a time in compiled code: a step of a 96-column row
costs about a microsecond there against ~0.3 ms for the dozen batched torch calls of a step, which
is what made lns slow on small rows. Rows are independent; a chunk's rows are split into
``torch.get_num_threads()`` contiguous ranges (:func:`solvers.refiners.cpu_kernels.row_ranges`),
each searched in a thread of :func:`solvers.refiners.cpu_kernels.thread_pool` (the kernel releases the
GIL). The result does not depend on the number of threads.

Compiled with the swap kernel by :mod:`solvers.refiners.cpu_kernels`, whose ``choose_backend`` tells
the caller whether it built (the caller uses the torch path otherwise).
"""

from __future__ import annotations

import torch

from solvers.refiners.cpu_kernels import load, load_error, map_ranges, row_ranges
from solvers.refiners.tabu_search import TabuOutcome


def tabu_rows_cpu(weight: torch.Tensor, gram: torch.Tensor, pruned: torch.Tensor, group: int, tenures: torch.Tensor,
                  steps: int, patience: int | None, refresh_every: int = 32, candidates: int | None = None,
                  seconds: float | None = None) -> TabuOutcome:
    """Same contract as :func:`solvers.refiners.tabu_search.tabu_rows`, on the CPU.

    ``seconds`` (None: no limit) stops the search once that much wall time has passed (checked
    every 16 steps of a row); rows not reached keep their start.
    """
    module = load()
    if module is None:
        raise RuntimeError(f"the CPU tabu kernel is unavailable: {load_error()}")
    weight = weight.to(torch.float64).contiguous()
    gram = gram.to(torch.float64).contiguous()
    best = pruned.to(torch.bool).clone().contiguous()
    tenures = tenures.to(torch.long).contiguous()
    rows, _ = weight.shape
    value = torch.empty(rows, dtype=torch.float64)
    improved_at = torch.zeros(rows, dtype=torch.long)
    taken = torch.zeros(rows, dtype=torch.long)
    limit = 0.0 if seconds is None else max(float(seconds), 1e-9)

    def run(r0: int, r1: int) -> int:
        return module.tabu_rows(weight, gram, best, int(group), tenures, int(steps),
                                -1 if patience is None else int(patience), int(refresh_every),
                                0 if candidates is None else int(candidates), limit,
                                torch.arange(r0, r1), value[r0:r1], improved_at[r0:r1], taken[r0:r1])

    timed_out = any(map_ranges(run, row_ranges(rows)))
    return TabuOutcome(best, value, improved_at, taken, timed_out)
