"""Numeric kernel of the ``lns`` refiner: tabu search over swap moves, batched over rows (torch).

One row with loss ``f(z) = zᵀ Q z``, ``Q = D_w G D_w``, ``z ∈ {0,1}^d`` (1 = pruned) and
``c = Q z``. Unpruning ``a`` (``z_a = 1``) and pruning ``b`` (``z_b = 0``) changes the loss by

    Δ(a, b) = q_aa + q_bb − 2 q_ab − 2 c_a + 2 c_b,

and ``c ← c + Q[:, b] − Q[:, a]`` (units: those of the loss). Swaps stay inside one group
(per-row: the whole row is one group; N:M: ``m`` consecutive columns), so every visited
mask is feasible.

**Tabu search.** Every step each row makes its best *allowed* swap, even when it makes
the loss worse: a chain of such steps is an ejection chain that leaves the 1-swap local
optimum through its cheapest exit and explores 2-, 3-, … swaps without enumerating
them (enumerating 2-swaps costs ``(k(d−k))²`` per row, 7·10⁹ at d = 576). After a swap
``(a, b)`` column ``a`` may not be pruned again and ``b`` may not be unpruned again for
``tenure`` steps, unless the move gives a loss below the row's best (aspiration). Each row
keeps the best mask it visited; the start is visited first, so the result is never worse
than the start (up to the rounding of the running values, which the caller re-verifies in
float64). Ties: the lowest group, then the lowest ``a``, then the lowest ``b``.

**Phases.** The search runs in phases ``p = 0 … P−1``; each starts from the row's best mask so
far with an empty tabu list and its own tenure ``tenures[row, p]`` (the caller draws them), and
ends for a row after ``steps`` steps, when the row has no allowed swap, or once it found no
better mask for ``patience`` steps. A longer tenure forces the chain further from the start:
on real crops no single tenure closed every 1-swap gap, a sequence of tenures closed more
than any one of them with the same number of steps (measured, see :mod:`solvers.refiners.lns`).

**Candidates.** On wide per-row rows the full ``d × d`` table of ``Δ`` per step is the cost;
with ``candidates = L`` only the ``L`` movable pruned columns with the smallest
``q_aa − 2c_a`` and the ``L`` movable kept columns with the smallest ``q_bb + 2c_b`` are paired
(``L²`` values per row), see :func:`_narrow_step`.

Numerics: float64 throughout; ``c`` is recomputed from scratch every ``refresh_every``
steps. Device-agnostic (CPU or CUDA): all work is batched tensor algebra on chunks of
rows, with ``Q`` of a chunk materialised as ``[rows, groups, g, g]`` blocks (``8·rows·d·g``
bytes: 85 MB for 32 rows of d = 576 per-row) unless candidates are used.

Two implementations of the same search: :func:`tabu_rows` here (batched torch, CPU or CUDA),
and the C++ kernel ``csrc/tabu_cpu.cpp`` (:mod:`solvers.refiners.tabu_cpp`; CPU, one row at a
time, no per-step tensor overhead — each step of a small row costs microseconds there instead of
the ~0.3 ms of a dozen torch calls). Both take the same swaps with the same ties and the same
update expressions; they can part only where rounding decides a tie (the C++ kernel refreshes
``c`` with plain loops, torch with a matrix product). In the C++ kernel the candidates are ordered
by (score, column); torch's ``topk`` leaves ties among equal scores unordered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TabuOutcome:
    """Best masks of a chunk of rows and what the search did."""

    pruned: torch.Tensor        # bool [rows, d], True = pruned: the best visited mask per row
    value: torch.Tensor         # float64 [rows]: loss of that mask, computed from scratch
    improved_at: torch.Tensor   # long [rows]: step (over all phases) at which the best was found (0 = the start)
    steps: torch.Tensor         # long [rows]: steps taken over all phases
    timed_out: bool             # the deadline stopped the search


def group_blocks(weight: torch.Tensor, gram: torch.Tensor, group: int) -> torch.Tensor:
    """``Q`` restricted to its diagonal ``group × group`` blocks: ``[rows, d/group, group, group]``."""
    rows, d = weight.shape
    ng = d // group
    g_blocks = gram.reshape(ng, group, ng, group).diagonal(dim1=0, dim2=2).permute(2, 0, 1)  # [ng, g, g]
    wb = weight.reshape(rows, ng, group)
    return wb.unsqueeze(3) * g_blocks.unsqueeze(0) * wb.unsqueeze(2)


def loss_gradient(weight: torch.Tensor, gram: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
    """``c = Q z = w ⊙ (G (w ⊙ z))`` for every row: ``[rows, d]``."""
    r = weight * pruned.to(weight.dtype)
    return weight * (r @ gram)


def tabu_rows(weight: torch.Tensor, gram: torch.Tensor, pruned: torch.Tensor, group: int, tenures: torch.Tensor,
              steps: int, patience: int | None, refresh_every: int = 32, deadline_check=None,
              candidates: int | None = None) -> TabuOutcome:
    """Tabu search in phases from ``pruned`` on a chunk of rows (torch); see the module docstring.

    ``weight`` [rows, d] and ``gram`` [d, d] in float64 on one device; ``group`` = the swap
    group size (``d`` per-row, ``m`` for N:M); ``tenures`` [rows, phases] (long): each row's tenure
    in each phase; ``steps`` per phase; ``patience`` (None: none) per row and phase;
    ``deadline_check()`` → True stops early; ``candidates`` (per-row only, used when
    ``d > 2·candidates``): see :func:`_narrow_step`.
    """
    rows, d = weight.shape
    dev = weight.device
    narrow = candidates is not None and group == d and d > 2 * candidates
    q_blocks = None if narrow else group_blocks(weight, gram, group)      # [R, ng, g, g]
    q_diag = weight * weight * torch.diagonal(gram)                        # q_jj
    tenures = tenures.to(dev)
    best_z = pruned.clone()
    best_v = _loss(weight, gram, best_z)
    improved_at = torch.zeros(rows, dtype=torch.long, device=dev)
    taken = torch.zeros(rows, dtype=torch.long, device=dev)
    ar = torch.arange(rows, device=dev)
    timed_out = False
    for phase in range(tenures.shape[1]):
        z = best_z.clone()
        c = loss_gradient(weight, gram, z)
        value = (c * z.to(c.dtype)).sum(1)
        free_at = torch.zeros(rows, d, dtype=torch.long, device=dev)      # step from which a column may move
        last_gain = torch.zeros(rows, dtype=torch.long, device=dev)
        active = torch.ones(rows, dtype=torch.bool, device=dev)
        for step in range(1, steps + 1):
            if deadline_check is not None and deadline_check():
                timed_out = True
                break
            if patience is not None:
                active &= step - last_gain <= patience
            if not bool(active.any()):
                break
            if step % refresh_every == 0:
                c = loss_gradient(weight, gram, z)
                value = (c * z.to(c.dtype)).sum(1)
            if narrow:
                best_delta, a, b = _narrow_step(weight, gram, q_diag, c, z, free_at <= step, candidates)
            else:
                best_delta, a, b = _block_step(q_blocks, q_diag, c, z, free_at <= step, value - best_v, best_v, group)
            active &= torch.isfinite(best_delta)
            live = active.clone()                                          # rows that move this step
            a, b, lr = a[live], b[live], ar[live]
            z[lr, a] = False
            z[lr, b] = True
            col_b = weight[lr] * gram[b] * weight[lr, b].unsqueeze(1)
            col_a = weight[lr] * gram[a] * weight[lr, a].unsqueeze(1)
            c[lr] += col_b - col_a
            value[lr] += best_delta[live]
            free_at[lr, a] = step + tenures[lr, phase]
            free_at[lr, b] = step + tenures[lr, phase]
            taken += live.long()
            better = live & (value < best_v - 1e-12 * best_v.abs())
            if bool(better.any()):
                best_z[better] = z[better]
                best_v[better] = value[better]
                improved_at[better] = taken[better]
                last_gain[better] = step
        if timed_out:
            break
    return TabuOutcome(best_z, _loss(weight, gram, best_z), improved_at, taken, timed_out)


def _loss(weight: torch.Tensor, gram: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
    """Each row's loss ``zᵀ Q z`` from scratch, float64 ``[rows]``."""
    c = loss_gradient(weight, gram, pruned)
    return (c * pruned.to(c.dtype)).sum(1)


def _block_step(q_blocks, q_diag, c, z, movable, excess, best_v, group):
    """Best allowed swap of every row over all pairs of its groups: ``(Δ, a, b)`` (Δ = inf: none)."""
    rows, d = z.shape
    ng = d // group
    a_term = (q_diag - 2.0 * c).reshape(rows, ng, group, 1)
    b_term = (q_diag + 2.0 * c).reshape(rows, ng, 1, group)
    delta = a_term + b_term - 2.0 * q_blocks                              # [R, ng, g(a), g(b)]
    zg = z.reshape(rows, ng, group)
    mg = movable.reshape(rows, ng, group)
    pair = zg.unsqueeze(3) & ~zg.unsqueeze(2)                            # a pruned, b kept
    allowed = pair & mg.unsqueeze(3) & mg.unsqueeze(2)
    aspire = pair & (excess.reshape(rows, 1, 1, 1) + delta < -1e-12 * best_v.abs().reshape(rows, 1, 1, 1))
    delta = torch.where(allowed | aspire, delta, torch.full_like(delta, float("inf")))
    flat = delta.reshape(rows, -1)
    pick = torch.argmin(flat, dim=1)
    best = flat[torch.arange(rows, device=z.device), pick]
    g_idx = pick // (group * group)
    return best, g_idx * group + (pick // group) % group, g_idx * group + pick % group


def _narrow_step(weight, gram, q_diag, c, z, movable, candidates):
    """Per-row rows with large ``d``: the best swap among the ``candidates`` movable pruned columns
    with the smallest ``q_aa − 2c_a`` and the ``candidates`` movable kept ones with the smallest
    ``q_bb + 2c_b`` (``Δ = those two terms − 2 q_ab`` with ``|q_ab| ≤ √(q_aa q_bb)``, so the best pair
    is almost always among them). Cost ``O(d + candidates²)`` per row instead of ``O(d²)``; tabu
    columns are never candidates, so no aspiration here."""
    inf = torch.full_like(c, float("inf"))
    a_score = torch.where(z & movable, q_diag - 2.0 * c, inf)
    b_score = torch.where(~z & movable, q_diag + 2.0 * c, inf)
    a_val, a_idx = torch.topk(a_score, candidates, dim=1, largest=False)
    b_val, b_idx = torch.topk(b_score, candidates, dim=1, largest=False)
    g_ab = gram[a_idx.unsqueeze(2), b_idx.unsqueeze(1)]                    # [R, L, L]
    w_a = torch.gather(weight, 1, a_idx).unsqueeze(2)
    w_b = torch.gather(weight, 1, b_idx).unsqueeze(1)
    delta = a_val.unsqueeze(2) + b_val.unsqueeze(1) - 2.0 * w_a * g_ab * w_b
    delta = torch.nan_to_num(delta, nan=float("inf"))                    # inf − inf where no candidate
    flat = delta.reshape(z.shape[0], -1)
    pick = torch.argmin(flat, dim=1)
    best = flat[torch.arange(z.shape[0], device=z.device), pick]
    return best, torch.gather(a_idx, 1, (pick // candidates).unsqueeze(1)).squeeze(1), \
        torch.gather(b_idx, 1, (pick % candidates).unsqueeze(1)).squeeze(1)
