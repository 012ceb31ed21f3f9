"""Speed of the exact best-swap search (``swap`` solver) relative to one GEMM, same process.

    python -m bench.swap_speed [--shapes 576x576,1536x576,576x1536,2048x2048] [--backend auto]

For each ``d_out × d_in`` shape (synthetic ``layer`` family, seed 0, 50 % per-row, Wanda warm
start) it prints:

* ``gemm_ms``: one float32 GEMM ``(d_out × d_in)·(d_in × d_in)`` (best of 7);
* ``sweep/gemm (warm)``: one exact best-swap sweep over all rows at the Wanda mask (search
  only, float32, best of 3) divided by ``gemm_ms``;
* ``sweep/gemm (conv)``: the same at the converged mask (the hardest sweep: no row improves,
  every row must be certified);
* ``iter/gemm (mean)``: mean wall time of a solver iteration (search + rank-two updates +
  bookkeeping, rows drop out as they converge) divided by ``gemm_ms``;
* ``sweeps``: iterations to convergence (float32 search) + float64 certification sweeps;
* ``total_s``: the whole ``solve("swap")`` call, certification and verification included;
* ``peak_MB``: peak resident memory of a fresh process that ran only this shape (ru_maxrss);
* the objective reduction versus Wanda.

Each shape runs in its own subprocess so the peak memory is per shape. The machine load
(1-minute load average) is printed because other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _best(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_one(d_out: int, d_in: int, backend: str) -> dict:
    import resource

    import torch

    import solvers
    from solvers.refiners.swap import resolve_backend, search_sweep
    from solvers.refiners.swap_search import gram_data, init_state

    p = solvers.generate(family="layer", d_in=d_in, d_out=d_out, seed=0, sparsity=0.5)
    a = p.weight.to(torch.float32).contiguous()
    g = p.gram.to(torch.float32).contiguous()
    a @ g
    gemm = _best(lambda: a @ g, 7)
    be = resolve_backend(backend, torch.device("cpu"), None)
    gd = gram_data(p.gram, torch.float32, torch.device("cpu"), None)
    wanda = solvers.solve("wanda", p)

    def sweep_time(mask) -> float:
        st = init_state(gd, p.weight, mask, torch.arange(d_out), backend=be)
        return _best(lambda: search_sweep(gd, st, 512 << 20), 3)

    warm_sweep = sweep_time(wanda.mask)
    t0 = time.perf_counter()
    res = solvers.solve("swap", p, warm_start=wanda, backend=be)
    total = time.perf_counter() - t0
    conv_sweep = sweep_time(res.mask)
    secs = res.extra["iteration_seconds"]
    return {
        "shape": f"{d_out}x{d_in}", "backend": be, "gemm_ms": 1e3 * gemm,
        "sweep_warm_ratio": warm_sweep / gemm, "sweep_conv_ratio": conv_sweep / gemm,
        "iter_mean_ratio": (sum(secs) / len(secs)) / gemm if secs else float("nan"),
        "sweeps": res.extra["search_iterations"], "certify_sweeps": res.extra["certify_iterations"],
        "total_s": total, "status": res.status,
        "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reduction": 1 - res.objective / wanda.objective,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="576x576,1536x576,576x1536,2048x2048",
                    help="comma-separated d_out x d_in shapes")
    ap.add_argument("--backend", default="auto", choices=["auto", "cpp", "torch"])
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the runs (default: torch's)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one:
        d_out, d_in = map(int, args.one.split("x"))
        print(json.dumps(run_one(d_out, d_in, args.backend)))
        return 0
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    head = (f"{'shape':>10} {'backend':>7} {'gemm_ms':>8} {'sweep/gemm(warm)':>16} {'sweep/gemm(conv)':>16} "
            f"{'iter/gemm(mean)':>15} {'sweeps':>7} {'cert':>4} {'total_s':>8} {'peak_MB':>8} {'vs wanda':>8}")
    print(head)
    for shape in args.shapes.split(","):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "bench.swap_speed", "--one", shape, "--backend", args.backend]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, check=False,
                             capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(f"{shape:>10} FAILED: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['shape']:>10} {r['backend']:>7} {r['gemm_ms']:8.2f} {r['sweep_warm_ratio']:16.2f} "
              f"{r['sweep_conv_ratio']:16.2f} {r['iter_mean_ratio']:15.2f} {r['sweeps']:7d} {r['certify_sweeps']:4d} "
              f"{r['total_s']:8.1f} {r['peak_MB']:8.0f} {-100 * r['reduction']:7.1f}%", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
