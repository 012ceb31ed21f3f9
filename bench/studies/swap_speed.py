"""Speed of the exact best-swap search (``swap`` solver) relative to one GEMM, same process.

    python -m bench.studies.swap_speed [--shapes 576x576,1536x576,576x1536,2048x2048] [--backend auto]
    python -m bench.studies.swap_speed --source real [--layers self_attn.q_proj,mlp.down_proj --block 10]
    python -m bench.studies.swap_speed --device cuda           # the torch search on a GPU
    python -m bench.studies.swap_speed --shapes 4096x4096,11008x4096,4096x11008 --tokens 2048 --sweeps-only --reps 2
    python -m bench.studies.swap_speed --instances A.safetensors,B.safetensors  # layers from maskbench extract

Instances: ``--source synthetic`` (default) takes each ``d_out × d_in`` shape from the synthetic
``layer`` family (seed 0); ``--source real`` takes full SmolLM2-135M layers of block ``--block``
through ``models/`` (the GGUF model, dequantised once and cached; dense statistics of
``--nsamples`` × ``--seqlen`` tokens of the default ``pydoc_data.topics`` calibration text, seed 0).
``--instances`` takes full-layer instance files written by ``maskbench extract`` instead (their
own pattern; this is how real layers reach a machine that has no copy of the model). All from
the Wanda mask. For each instance it prints:

* ``gemm_ms``: one float32 GEMM ``(d_out × d_in)·(d_in × d_in)`` on the device (best of 7 before
  and 7 after the solves: on 2 shared cores one burst of other work can slow all 7 of a batch,
  and the GEMM is the denominator of every ratio);
* ``sweep/gemm (warm)``: one exact best-swap sweep over all rows at the Wanda mask (search
  only, float32, best of 3) divided by ``gemm_ms``;
* ``sweep/gemm (conv)``: the same at the converged mask (the hardest sweep: no row improves,
  every row must be certified). Both sweeps ask, as the solver does, only for swaps below
  ``−tol·f_i`` (``tol`` = 1e-6);
* ``iter/gemm (mean)``: mean wall time of a solver iteration (search + rank-two updates +
  bookkeeping, rows drop out as they converge; float32 and float64 certification iterations)
  divided by ``gemm_ms``;
* ``solve/sweep/gemm``: the whole solve (``solve_seconds``: state set-up, float32 search, float64
  certification with its own set-up, the float64 no-worse-than-warm-start guard) per iteration,
  divided by ``gemm_ms`` — the issue's "seconds per sweep including the certification";
* ``sweeps``: iterations to convergence (float32 search) + float64 certification sweeps;
* ``total_s``: the whole ``solve("swap")`` call, certification and verification included;
* ``peak_MB``: peak resident memory of a fresh process that ran only this instance (ru_maxrss);
* the objective reduction versus Wanda.

Not timed: the C++ kernel's compilation, model loading, calibration, the Wanda warm start, and
one untimed warm-up ``solve`` (CUDA context, allocator, first-call dispatch). On CUDA every timed
region ends with ``torch.cuda.synchronize()``. Each instance runs in its own subprocess so the
peak memory is per instance. The machine load (1-minute load average) is printed because other
jobs share the cores: compare the ratios, which are measured within one process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _best(fn, reps: int, device) -> float:
    import torch

    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t)
    return best


def _fail(message: str) -> None:
    print(f"maskbench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def synthetic_problem(shape: str, tokens: int | None = None):
    import solvers

    d_out, d_in = map(int, shape.split("x"))
    return f"{d_out}x{d_in}", solvers.generate(family="layer", d_in=d_in, d_out=d_out, seed=0, sparsity=0.5,
                                               tokens=tokens)


def real_problem(kind: str, block: int, nsamples: int, seqlen: int):
    """Full layer ``kind`` of block ``block`` of SmolLM2-135M, dense statistics (see module docstring)."""
    import torch

    from models.calibration import load_corpus, prepare
    from models.capture import block_layers, forward_stats_until
    from models.loading import load_model
    from solvers.pattern import parse_pattern

    loaded = load_model(None, device="cpu")
    data = prepare(loaded.tokenizer, load_corpus(None), nsamples, seqlen, 0, "dense")
    layers = block_layers(loaded.model)
    if not 0 <= block < len(layers):
        _fail(f"--block {block} is not in 0..{len(layers) - 1}")
    chosen = [lay for lay in layers[block] if lay.kind == kind]
    if not chosen:
        _fail(f"block {block} has no layer {kind!r} (it has {', '.join(lay.kind for lay in layers[block])})")
    layer = chosen[0]
    batches = [data.windows[i:i + 8] for i in range(0, nsamples, 8)]
    acc = forward_stats_until(loaded.model, block, batches, [layer])[layer.name]
    weight = layer.weight().to(torch.float32).clone()
    problem = acc.problem(weight, parse_pattern("per-row", weight.shape[1], 0.5))
    return f"{layer.kind}@{block} {weight.shape[0]}x{weight.shape[1]}", problem


def file_problem(path: str):
    """A layer instance written by ``maskbench extract`` (its own pattern and statistics)."""
    from solvers import load_instance

    problem = load_instance(path)
    stem = os.path.basename(path).rsplit(".", 1)[0].removeprefix("model.layers.")
    return f"{stem} {problem.d_out}x{problem.d_in}", problem


def run_one(name: str, problem, backend: str, device_name: str, sweeps_only: bool = False, reps: int = 7) -> dict:
    import resource

    import torch

    import solvers
    from solvers.device import pick_device
    from solvers.refiners.swap import resolve_backend, search_sweep
    from solvers.refiners.swap_search import gram_data, init_state

    device = pick_device(device_name)
    p = problem
    d_out = p.d_out
    a = p.weight.to(device, torch.float32).contiguous()
    g = p.gram.to(device, torch.float32).contiguous()
    gemm = _best(lambda: a @ g, reps, device)
    be = resolve_backend(backend, device, None)
    gd = gram_data(p.gram, torch.float32, device, None)
    wanda = solvers.solve("wanda", p)
    settings = {"backend": be, "device": str(device)}
    if not sweeps_only:
        solvers.solve("swap", p, warm_start=wanda, max_iters=2, **settings)  # warm-up, not timed

    def sweep_time(mask) -> float:
        st = init_state(gd, p.weight, mask, torch.arange(d_out), backend=be)
        threshold = -1e-6 * st.loss  # what the solver asks of a sweep: swaps below −tol·f_i (default tol)
        return _best(lambda: search_sweep(gd, st, 512 << 20, threshold=threshold), min(3, reps), device)

    warm_sweep = sweep_time(wanda.mask)
    if sweeps_only:  # 7B shapes: a solve to convergence would take hours on a CPU
        gemm = min(gemm, _best(lambda: a @ g, reps, device))
        out = {"instance": name, "device": str(device), "backend": be, "gemm_ms": 1e3 * gemm,
               "sweep_warm_ratio": warm_sweep / gemm, "sweep_conv_ratio": float("nan"),
               "iter_mean_ratio": float("nan"), "solve_per_sweep_ratio": float("nan"), "sweeps": 0,
               "certify_sweeps": 0, "total_s": float("nan"), "status": "-",
               "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "reduction": float("nan")}
        if device.type == "cuda":
            out["peak_cuda_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
        return out
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    res = solvers.solve("swap", p, warm_start=wanda, **settings)
    total = time.perf_counter() - t0
    conv_sweep = sweep_time(res.mask)
    gemm = min(gemm, _best(lambda: a @ g, 7, device))
    secs = res.extra["iteration_seconds"]
    out = {
        "instance": name, "device": str(device), "backend": be, "gemm_ms": 1e3 * gemm,
        "sweep_warm_ratio": warm_sweep / gemm, "sweep_conv_ratio": conv_sweep / gemm,
        "iter_mean_ratio": (sum(secs) / len(secs)) / gemm if secs else float("nan"),
        "solve_per_sweep_ratio": res.solve_seconds / max(1, res.iterations) / gemm,
        "sweeps": res.extra["search_iterations"], "certify_sweeps": res.extra["certify_iterations"],
        "total_s": total, "status": res.status,
        "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reduction": 1 - res.objective / wanda.objective,
    }
    if device.type == "cuda":
        out["peak_cuda_MB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="synthetic", choices=["synthetic", "real"],
                    help="synthetic 'layer' family shapes, or real SmolLM2-135M layers (default synthetic)")
    ap.add_argument("--shapes", default="576x576,1536x576,576x1536,2048x2048",
                    help="synthetic: comma-separated d_out x d_in shapes")
    ap.add_argument("--layers", default="self_attn.q_proj,mlp.down_proj",
                    help="real: comma-separated layer kinds inside a block (default: the 576x576 q_proj "
                         "and the 576x1536 down_proj)")
    ap.add_argument("--block", type=int, default=10, help="real: decoder block (default 10)")
    ap.add_argument("--nsamples", type=int, default=16, help="real: calibration windows (default 16)")
    ap.add_argument("--seqlen", type=int, default=256, help="real: tokens per window (default 256)")
    ap.add_argument("--instances", default=None,
                    help="comma-separated instance files (maskbench extract); replaces --source")
    ap.add_argument("--backend", default="auto", choices=["auto", "cpp", "torch"])
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N: where swap and the GEMM run")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the runs (default: torch's)")
    ap.add_argument("--tokens", type=int, default=None,
                    help="synthetic: calibration tokens (default max(4·d_in, 256); 7B shapes need fewer, e.g. 4096)")
    ap.add_argument("--sweeps-only", action="store_true",
                    help="time the warm-start sweep and the GEMM only, no solve to convergence (for 7B shapes)")
    ap.add_argument("--reps", type=int, default=7,
                    help="GEMM timings before and after the solves (best of; default 7), sweeps best of min(3, reps)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    from solvers.device import pick_device
    from solvers.errors import MaskbenchError

    try:
        pick_device(args.device)
    except MaskbenchError as exc:
        print(f"maskbench: error: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.instances:
        missing = [f for f in args.instances.split(",") if not os.path.isfile(f)]
        if missing:
            _fail(f"instance file not found: {missing[0]}")
    if args.one:
        if args.instances:
            name, problem = file_problem(args.one)
        elif args.source == "real":
            name, problem = real_problem(args.one, args.block, args.nsamples, args.seqlen)
        else:
            name, problem = synthetic_problem(args.one, args.tokens)
        print(json.dumps(run_one(name, problem, args.backend, args.device, args.sweeps_only, args.reps)))
        return 0
    items = (args.instances.split(",") if args.instances
             else args.layers.split(",") if args.source == "real" else args.shapes.split(","))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    head = (f"{'instance':>26} {'backend':>7} {'gemm_ms':>8} {'sweep/gemm(warm)':>16} {'sweep/gemm(conv)':>16} "
            f"{'iter/gemm(mean)':>15} {'solve/sweep/gemm':>16} {'sweeps':>7} {'cert':>4} {'total_s':>8} "
            f"{'peak_MB':>8} {'vs wanda':>8}")
    print(head)
    for item in items:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, "-m", "bench.studies.swap_speed", "--one", item, "--backend", args.backend,
               "--source", args.source, "--device", args.device, "--block", str(args.block),
               "--nsamples", str(args.nsamples), "--seqlen", str(args.seqlen)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.tokens:
            cmd += ["--tokens", str(args.tokens)]
        if args.sweeps_only:
            cmd += ["--sweeps-only"]
        cmd += ["--reps", str(args.reps)]
        if args.instances:
            cmd += ["--instances", args.instances]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(f"{item:>26} FAILED: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['instance']:>26} {r['backend']:>7} {r['gemm_ms']:8.2f} {r['sweep_warm_ratio']:16.2f} "
              f"{r['sweep_conv_ratio']:16.2f} {r['iter_mean_ratio']:15.2f} {r['solve_per_sweep_ratio']:16.2f} "
              f"{r['sweeps']:7d} {r['certify_sweeps']:4d} {r['total_s']:8.1f} {r['peak_MB']:8.0f} "
              f"{-100 * r['reduction']:7.1f}%", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
