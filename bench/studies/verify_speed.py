"""Cost of the float64 re-verification of a mask at the 7B layer shapes: old form vs new forms, same run.

    python -m bench.studies.verify_speed [--shapes 4096x4096,11008x4096,4096x11008] [--tokens 512]

For each ``d_out × d_in`` shape: ``W`` Gaussian, calibration inputs ``X`` [tokens, d_in] from
:func:`solvers.synthetic.llm_like_activations` (seed 0), ``G = XᵀX`` accumulated by
:class:`solvers.problem.GramAccumulator` (which keeps ``X`` as the problem's ``gram_factor`` when
``tokens ≤ d_in/2``), the Wanda mask. Timed (best of ``--reps``), all float64 on the CPU:

* ``old_s``: the form used until this study, ``Σ ((R G) ⊙ R)`` over the full ``G`` (copied below
  as :func:`full_gram_form`, ``d_out·d_in²`` multiply-adds);
* ``sym_s``: :func:`solvers.objective.residual_row_objectives`, the upper block triangle of ``G``
  (``≈ d_out·d_in²/2``), used when the problem has no tokens;
* ``tokens_s``: :func:`solvers.objective.factor_row_objectives`, ``‖X r_i‖²``
  (``d_out·d_in·tokens``), used when it has them;
* ``wanda_s``: the Wanda solve itself without verification, for scale;
* ``rel_sym`` / ``rel_tokens``: ``max_i |f_i(new) − f_i(old)| / f_i(old)``.

Peak memory is not the point here (see ``bench/studies/solver_memory.py``).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from solvers.baselines.selection import mask_from_scores
from solvers.baselines.wanda import wanda_scores
from solvers.objective import factor_row_objectives, residual_row_objectives
from solvers.pattern import PerRow
from solvers.problem import GramAccumulator
from solvers.synthetic import llm_like_activations


def full_gram_form(gram: torch.Tensor, residual: torch.Tensor, row_chunk: int = 1024,
                   col_chunk: int = 2048) -> torch.Tensor:
    """The verification as it was before this study (solvers/objective.py at 04681e1)."""
    d_out, d_in = residual.shape
    out = torch.empty(d_out, dtype=torch.float64)
    for r0 in range(0, d_out, row_chunk):
        r = residual[r0:r0 + row_chunk].to(torch.float64)
        acc = torch.zeros(r.shape[0], dtype=torch.float64)
        for c0 in range(0, d_in, col_chunk):
            g_block = gram[:, c0:c0 + col_chunk].to(torch.float64)
            acc += ((r @ g_block) * r[:, c0:c0 + col_chunk]).sum(dim=1)
        out[r0:r0 + row_chunk] = acc
    return out


def _best(fn, reps: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def run_shape(shape: str, tokens: int, reps: int) -> dict:
    d_out, d_in = map(int, shape.split("x"))
    gen = torch.Generator().manual_seed(0)
    x = llm_like_activations(tokens, d_in, gen).to(torch.float32)
    weight = (torch.randn(d_out, d_in, generator=gen) / d_in ** 0.5).to(torch.float32)
    acc = GramAccumulator(d_in)
    acc.update(x)
    problem = acc.problem(weight, PerRow(d_in // 2))
    del x, acc
    wanda_s, mask = _best(lambda: mask_from_scores(wanda_scores(problem), problem.pattern), reps)
    residual = torch.where(mask, torch.zeros(()), problem.weight)
    old_s, old = _best(lambda: full_gram_form(problem.gram, residual), reps)
    sym_s, sym = _best(lambda: residual_row_objectives(problem.gram, residual), reps)
    out = {"shape": shape, "tokens": tokens, "wanda_s": wanda_s, "old_s": old_s, "sym_s": sym_s,
           "rel_sym": float(((sym - old).abs() / old).max())}
    if problem.gram_factor is not None:
        tok_s, tok = _best(lambda: factor_row_objectives(problem.gram_factor, residual), reps)
        out.update(tokens_s=tok_s, rel_tokens=float(((tok - old).abs() / old).max()))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="4096x4096,11008x4096,4096x11008", help="comma-separated d_out x d_in")
    ap.add_argument("--tokens", type=int, default=512, help="calibration tokens (default 512 = 4 × 128)")
    ap.add_argument("--reps", type=int, default=2, help="best of this many timings (default 2)")
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs; tokens {args.tokens}")
    print(f"{'shape':>11} {'wanda_s':>8} {'old_s':>8} {'sym_s':>8} {'tokens_s':>8} {'old/sym':>8} "
          f"{'old/tokens':>10} {'rel_sym':>9} {'rel_tokens':>10}")
    for shape in args.shapes.split(","):
        r = run_shape(shape, args.tokens, args.reps)
        tok = r.get("tokens_s", float("nan"))
        print(f"{shape:>11} {r['wanda_s']:8.3f} {r['old_s']:8.2f} {r['sym_s']:8.2f} {tok:8.2f} "
              f"{r['old_s'] / r['sym_s']:8.2f} {r['old_s'] / tok:10.1f} {r['rel_sym']:9.1e} "
              f"{r.get('rel_tokens', float('nan')):10.1e}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
