"""Peak memory of each solver at a 7B layer shape (default 4096 × 11008), one fresh process per solver.

    python -m bench.studies.solver_memory [--shape 4096x11008] [--tokens 512] [--time-limit 60]
                                          [--solvers wanda,sparsegpt,...]

Each solver runs in its own subprocess on the same instance: ``W`` Gaussian (float32), ``X``
[tokens, d_in] with outlier channels and a rank-64 correlation (seed 0), ``G = XᵀX`` by
:class:`solvers.problem.GramAccumulator` (which keeps ``X`` for the verification). After the
problem is built the process resets its peak-RSS counter (``/proc/self/clear_refs`` = 5, Linux)
and reads ``VmHWM`` after the solve, so ``peak_MB − base_MB`` is what the solve (with its
float64 re-verification) added on top of the problem. Refiners start from Wanda (its solve is
inside the measured region; its memory is small). Solvers that would run for hours at this
size stop at ``--time-limit`` seconds (their memory is set up in the first iteration):
``swap`` and ``lns`` take the limit (a ``swap`` stopped by it skips its float64
certification, so ``swap-float64`` runs one float64 iteration from Wanda: the certification's
state); ``bound`` runs on the first ``--bound-rows`` rows only
(its memory is per row, the rows run one after another); ``refit`` is
:func:`solvers.reconstruct.refit` by CG with ``--refit-iters`` iterations (memory does not
grow with iterations).

Reported per solver: ``base_MB`` (RSS with the problem built), ``peak_MB`` (the peak during
the solve), ``added_MB``, ``seconds`` and the verified objective.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

DEFAULT_SOLVERS = ("wanda,sparsegpt,sparsegpt-update,wanda+swap,swap-float64,wanda+lns,wanda+dsnot,bound,refit,"
                   "verify")


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def build_problem(shape: str, tokens: int):
    import torch

    from solvers.pattern import PerRow
    from solvers.problem import GramAccumulator

    d_out, d_in = map(int, shape.split("x"))
    g = torch.Generator().manual_seed(0)
    scale = torch.exp(0.5 * torch.randn(d_in, generator=g))
    scale[torch.randperm(d_in, generator=g)[:max(1, d_in // 100)]] *= 100.0
    basis = torch.randn(d_in, 64, generator=g) / 8.0
    z = torch.randn(tokens, d_in, generator=g)
    x = (z + (z @ basis) @ basis.T) * scale
    weight = torch.randn(d_out, d_in, generator=g) / d_in ** 0.5
    acc = GramAccumulator(d_in)
    acc.update(x)
    return acc.problem(weight, PerRow(d_in // 2))


def run_one(name: str, shape: str, tokens: int, time_limit: float, bound_rows: int, refit_iters: int) -> dict:
    import torch

    import solvers
    from solvers.objective import row_objectives
    from solvers.reconstruct import refit

    problem = build_problem(shape, tokens)
    wanda = None
    if name in ("bound", "refit", "verify", "swap-float64"):
        wanda = solvers.solve("wanda", problem)
    if name == "bound":
        problem = problem.crop(torch.arange(bound_rows), torch.arange(problem.d_in))
        wanda = solvers.solve("wanda", problem)
    base = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t0 = time.perf_counter()
    if name == "sparsegpt-update":
        res = solvers.solve("sparsegpt", problem, update_weights=True)
        value = res.extra["objective_with_weight_update"]
    elif name == "refit":
        fit = refit(problem, wanda.mask, method="cg", max_iters=refit_iters)
        value = fit.objective
    elif name == "swap-float64":
        res = solvers.solve("swap", problem, warm_start=wanda, dtype="float64", max_iters=1)
        value = res.objective
    elif name == "verify":
        value = float(row_objectives(problem, wanda.mask).sum())
    elif name == "bound":
        res = solvers.solve("bound", problem, warm_start=wanda, time_limit=time_limit, workers=1)
        value = res.lower_bound
    else:
        limit = time_limit if name.endswith(("swap", "lns")) else None
        res = solvers.solve(name, problem, time_limit=limit)
        value = res.objective
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    return {"solver": name, "base_MB": base / 1024, "peak_MB": peak / 1024, "added_MB": (peak - base) / 1024,
            "seconds": seconds, "value": value, "factor": problem.gram_factor is not None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="4096x11008", help="d_out x d_in (default 4096x11008)")
    ap.add_argument("--tokens", type=int, default=512, help="calibration tokens (default 512)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds for swap / lns / bound (default 60)")
    ap.add_argument("--bound-rows", type=int, default=1, help="rows given to bound (default 1)")
    ap.add_argument("--refit-iters", type=int, default=3, help="CG iterations of the refit (default 3)")
    ap.add_argument("--solvers", default=DEFAULT_SOLVERS, help=f"comma-separated (default {DEFAULT_SOLVERS})")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.shape, args.tokens, args.time_limit, args.bound_rows,
                                 args.refit_iters)))
        return 0
    print(f"shape {args.shape}, tokens {args.tokens}, time limit {args.time_limit:g} s, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'solver':>18} {'base_MB':>8} {'peak_MB':>8} {'added_MB':>9} {'seconds':>8} {'value':>12}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    for name in args.solvers.split(","):
        cmd = [sys.executable, "-m", "bench.studies.solver_memory", "--one", name, "--shape", args.shape,
               "--tokens", str(args.tokens), "--time-limit", str(args.time_limit),
               "--bound-rows", str(args.bound_rows), "--refit-iters", str(args.refit_iters)]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
            print(f"{name:>18} FAILED: {tail}", flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        value = "-" if r["value"] is None else f"{r['value']:.6g}"
        print(f"{name:>18} {r['base_MB']:8.0f} {r['peak_MB']:8.0f} {r['added_MB']:9.0f} {r['seconds']:8.1f} "
              f"{value:>12}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
