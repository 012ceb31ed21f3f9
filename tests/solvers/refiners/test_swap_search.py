"""The pure-torch 1-swap search state (solvers.refiners.swap_search): the swap change Δ by its formula.

With ``c = G r`` (``r`` the pruned part of the row), regrowing ``u`` and pruning ``q`` changes the
row loss by ``Δ = w_u² G_uu − 2 w_u c_u + w_q² G_qq + 2 w_q c_q − 2 w_u w_q G_uq``.
"""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.objective import row_objectives
from solvers.refiners.swap_search import gram_data, init_state


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_delta_formula_matches_recomputed_objective(dtype):
    p = solvers.generate(family="small", d_in=32, d_out=6, seed=3)
    keep = solvers.solve("wanda", p).mask
    gd = gram_data(p.gram, dtype, torch.device("cpu"), None)
    st = init_state(gd, p.weight, keep, torch.arange(p.d_out))
    gen = torch.Generator().manual_seed(0)
    base = row_objectives(p, keep)
    for _ in range(40):
        i = int(torch.randint(p.d_out, (1,), generator=gen))
        pr, kp = torch.nonzero(~keep[i]).flatten(), torch.nonzero(keep[i]).flatten()
        u = int(pr[torch.randint(len(pr), (1,), generator=gen)])
        q = int(kp[torch.randint(len(kp), (1,), generator=gen)])
        w, c, g = st.w[i].double(), st.c[i].double(), p.gram.double()
        delta = w[u] ** 2 * g[u, u] - 2 * w[u] * c[u] + w[q] ** 2 * g[q, q] + 2 * w[q] * c[q] - 2 * w[u] * w[q] * g[u, q]
        k2 = keep.clone()
        k2[i, u], k2[i, q] = True, False
        exact = float(row_objectives(p, k2)[i] - base[i])
        tol = 1e-9 if dtype == torch.float64 else 1e-4
        assert abs(float(delta) - exact) <= tol * float(base[i])
