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
``tenure`` steps (a per-row random tenure in ``[base, 2·base]``, drawn from the seed, so
rows do not cycle in lock step), unless the move gives a loss below the row's best
(aspiration). Each row keeps the best mask it visited; the start is visited first, so
the result is never worse than the start (up to the rounding of the running values,
which the caller re-verifies in float64).

**Candidates.** On wide per-row rows the full ``d × d`` table of ``Δ`` per step is the cost;
with ``candidates = L`` only the ``L`` movable pruned columns with the smallest
``q_aa − 2c_a`` and the ``L`` movable kept columns with the smallest ``q_bb + 2c_b`` are paired
(``L²`` values per row), see :func:`_narrow_step`.

Numerics: float64 throughout; ``c`` is recomputed from scratch every ``refresh_every``
steps. Device-agnostic (CPU or CUDA): all work is batched tensor algebra on chunks of
rows, with ``Q`` of a chunk materialised as ``[rows, groups, g, g]`` blocks (``8·rows·d·g``
bytes: 85 MB for 32 rows of d = 576 per-row) unless candidates are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TabuOutcome:
    """Best masks of a chunk of rows and what the search did."""

    pruned: torch.Tensor        # bool [rows, d], True = pruned: the best visited mask per row
    value: torch.Tensor         # float64 [rows]: running value of that mask
    start_value: torch.Tensor   # float64 [rows]: value of the start
    improved_at: torch.Tensor   # long [rows]: step at which the best was found (0 = the start)
    steps: int                  # steps taken


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


def tabu_rows(weight: torch.Tensor, gram: torch.Tensor, pruned: torch.Tensor, group: int, steps: int,
              tenure: int, generator: torch.Generator, refresh_every: int = 32,
              deadline_check=None, candidates: int | None = None, patience: int | None = None) -> TabuOutcome:
    """Tabu search from ``pruned`` on a chunk of rows; see the module docstring.

    ``weight`` [rows, d] and ``gram`` [d, d] in float64 on one device; ``group`` = the
    swap group size (``d`` per-row, ``m`` for N:M); ``deadline_check()`` → True stops early;
    ``candidates`` (per-row only, used when ``d > 2·candidates``): see :func:`_narrow_step`;
    ``patience``: stop once no row of the chunk has found a better mask for that many steps.
    """
    rows, d = weight.shape
    dev = weight.device
    narrow = candidates is not None and group == d and d > 2 * candidates
    q_blocks = None if narrow else group_blocks(weight, gram, group)      # [R, ng, g, g]
    q_diag = weight * weight * torch.diagonal(gram)                        # q_jj
    z = pruned.clone()
    c = loss_gradient(weight, gram, z)
    value = (c * z.to(c.dtype)).sum(1)
    start_value = value.clone()
    best_z, best_v = z.clone(), value.clone()
    improved_at = torch.zeros(rows, dtype=torch.long, device=dev)
    base = max(1, int(tenure))
    row_tenure = (base + torch.randint(0, base + 1, (rows,), generator=generator)).to(dev)
    free_at = torch.zeros(rows, d, dtype=torch.long, device=dev)           # step from which a column may move
    ar = torch.arange(rows, device=dev)
    taken, last_gain = 0, 0
    for step in range(1, steps + 1):
        if deadline_check is not None and deadline_check():
            break
        if patience is not None and step - last_gain > patience:
            break
        if step % refresh_every == 0:
            c = loss_gradient(weight, gram, z)
            value = (c * z.to(c.dtype)).sum(1)
        if narrow:
            best_delta, a, b = _narrow_step(weight, gram, q_diag, c, z, free_at <= step, candidates)
        else:
            best_delta, a, b = _block_step(q_blocks, q_diag, c, z, free_at <= step, value - best_v, best_v, group)
        live = torch.isfinite(best_delta)
        if not bool(live.any()):
            break
        a, b = a[live], b[live]
        lr = ar[live]
        z[lr, a] = False
        z[lr, b] = True
        col_b = weight[lr] * gram[b] * weight[lr, b].unsqueeze(1)
        col_a = weight[lr] * gram[a] * weight[lr, a].unsqueeze(1)
        c[lr] += col_b - col_a
        value[lr] += best_delta[live]
        free_at[lr, a] = step + row_tenure[lr]
        free_at[lr, b] = step + row_tenure[lr]
        better = value < best_v - 1e-12 * best_v.abs()
        if bool(better.any()):
            best_z[better] = z[better]
            best_v[better] = value[better]
            improved_at[better] = step
            last_gain = step
        taken = step
    exact = loss_gradient(weight, gram, best_z)
    best_v = (exact * best_z.to(exact.dtype)).sum(1)
    return TabuOutcome(best_z, best_v, start_value, improved_at, taken)


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
