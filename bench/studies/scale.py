"""Scale benchmark: whole-model pruning of a random-init Llama with the 7B layer shapes.

    python -m bench.studies.scale --blocks 2,4 [--solvers wanda,sparsegpt,wanda+swap] [--out scale.json]
    python -m bench.studies.scale --blocks 8 --sweeps 4096x4096,11008x4096,4096x11008

**Model.** A ``LlamaForCausalLM`` with LLaMA-7B's layer shapes (hidden 4096, intermediate 11008, 32
heads, vocabulary 32 000) but ``B`` blocks, random-initialised in float16 (seed 0, transformers'
own init: normal, std 0.02) and written with ``save_pretrained`` (``torch_dtype`` float16) to
``--workdir`` (default ``/tmp/maskbench-scale/llama7b-B<B>``; reused when complete), with a
byte-level BPE tokenizer trained on the default corpus (its ids all lie below 32 000). B = 2 is
0.8 B parameters (1.6 GB), B = 8 1.9 B (3.7 GB).

**Pruning.** Each (B, solver) is one fresh ``maskbench prune DIR --solver S --nsamples N --seqlen L
--eval-windows E --json`` process (``--dtype auto`` = float16; ``--offload auto``: on a CPU the model
stays float16 and each block computes in float32, one at a time; on CUDA block-wise when the
model does not fit). Refiners get ``--time-limit`` seconds per layer. From its JSON:

* ``peak RSS`` (``ru_maxrss``; and peak CUDA memory) against the float16 model's bytes;
* per block, seconds of each stage: ``materialise`` (block to the device in the compute precision
  and the masked weights back), ``statistics`` (calibration forward, float64 Gram), ``solve`` (the
  solver **including the float64 re-verification of every mask**, which lives in ``solvers/``),
  ``propagate`` (pruned block forward); the first block is reported apart from the mean of the
  others (it also pays one-time costs);
* dense and pruned perplexity (of a random model: a smoke value, not a quality figure).

**Verification and 1-swap per sweep** (``--sweeps``): for each 7B shape ``d_out × d_in`` one fresh
process builds a problem from a random float32 weight (std 0.02) and the float64 Gram of
``--sweep-tokens`` random activations with log-normal column scales (outlier features), then
times one float32 GEMM ``(d_out × d_in)·(d_in × d_in)``, Wanda's solve, the float64 re-verification
(``solvers.objective.evaluate``) of Wanda's mask, and one exact best-swap sweep (search only,
float32) at Wanda's mask; it prints ``sweep/gemm`` and ``verify/gemm``. The estimated verification
time of a 7B block is 4·t(4096×4096) + 2·t(11008×4096) + t(4096×11008).

Each run also records its process's CPU seconds and the 1-minute load average: on a shared
machine wall seconds grow with the load, CPU seconds much less. Results go to ``--out`` (JSON,
written atomically after every run; an existing file is not replaced unless ``--force``).
Compare within one invocation: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HIDDEN, INTERMEDIATE, HEADS, VOCAB = 4096, 11008, 32, 32000
SHAPES_7B = ("4096x4096", "11008x4096", "4096x11008")
COMPLETE = "maskbench-scale.json"


def _fail(message: str) -> None:
    print(f"maskbench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------ the model
def write_model(directory: Path, blocks: int, dims: tuple[int, int, int, int] = (HIDDEN, INTERMEDIATE, HEADS, VOCAB),
                seed: int = 0) -> None:
    """Write the random-init Llama (``dims`` = hidden, intermediate, heads, vocabulary; the 7B ones by
    default) with ``blocks`` blocks in float16, and a tokenizer."""
    hidden, intermediate, heads, vocab = dims
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from models.calibration import load_corpus

    directory.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([load_corpus().text], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    assert len(fast) <= vocab
    fast.save_pretrained(directory)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=blocks, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=2048, bos_token_id=0, eos_token_id=1, dtype="float16")
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)  # built in float16 directly: no float32 copy of 7B-shaped blocks
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(directory)
    (directory / COMPLETE).write_text(json.dumps({"blocks": blocks, "dims": list(dims), "seed": seed,
                                                  "dtype": "float16"}))


def ensure_model(workdir: Path, blocks: int, dims: tuple[int, int, int, int]) -> Path:
    """The model directory for ``blocks`` blocks, written first unless a complete one with these dims is there."""
    directory = workdir / (f"llama7b-B{blocks}" if dims == (HIDDEN, INTERMEDIATE, HEADS, VOCAB)
                           else f"llama-{'x'.join(map(str, dims))}-B{blocks}")
    marker = directory / COMPLETE
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if recorded.get("blocks") == blocks and tuple(recorded.get("dims", ())) == dims:
            return directory
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.studies.scale", "--write", str(directory), "--blocks", str(blocks),
                    "--dims", ",".join(map(str, dims))], check=True)
    print(f"wrote {directory} in {time.perf_counter() - t:.0f} s", flush=True)
    return directory


def weight_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.safetensors"))


# ------------------------------------------------------------------ one prune
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prune_run(directory: Path, solver: str, args) -> dict:
    cmd = [sys.executable, "-m", "bench.cli", "prune", str(directory), "--solver", solver, "--nsamples",
           str(args.nsamples), "--seqlen", str(args.seqlen), "--eval-windows", str(args.eval_windows),
           "--batch-size", str(args.nsamples), "--json", "--no-progress", "--dtype", args.dtype,
           "--offload", args.offload, "--no-dense-check"]  # a random-init model is worse than guessing by design
    if args.device:
        cmd += ["--device", args.device]
    if "+" in solver and args.time_limit:
        cmd += ["--time-limit", str(args.time_limit)]
    t, cpu0, load0 = time.perf_counter(), _children_cpu(), os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu0
    load = (load0 + os.getloadavg()[0]) / 2
    if proc.returncode != 0:
        return {"solver": solver, "error": (proc.stderr.strip().splitlines() or ["?"])[-1], "wall_s": wall}
    out = json.loads(proc.stdout)
    blocks = out["block_seconds"]
    stages = [k for k in blocks[0] if k != "capture"]
    rest = blocks[1:] or blocks
    return {"solver": solver, "wall_s": wall, "cpu_s": cpu, "load_average": load, "peak_rss_mib": out["peak_rss_mib"],
            "peak_cuda_mib": out.get("peak_cuda_mib"), "dense_ppl": out["dense_ppl"], "pruned_ppl": out["pruned_ppl"],
            "dtype": out["dtype"], "offload": out["offload"], "compute_dtype": out["protocol"].get("compute_dtype"),
            "stage_seconds": out["stage_seconds"],
            "first_block": {k: blocks[0][k] for k in stages},
            "per_block_mean": {k: sum(b[k] for b in rest) / len(rest) for k in stages},
            "block_total_mean": sum(sum(b[k] for k in stages) for b in rest) / len(rest)}


# ------------------------------------------------------------------ 1-swap sweep and verification
def sweep_measurement(shape: str, tokens: int, seed: int = 0) -> dict:
    import torch

    import solvers
    from solvers.objective import evaluate
    from solvers.pattern import PerRow, per_row_k
    from solvers.problem import GramAccumulator
    from solvers.refiners.swap import resolve_backend, search_sweep
    from solvers.refiners.swap_search import gram_data, init_state

    d_out, d_in = map(int, shape.split("x"))
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(d_out, d_in, generator=g) * 0.02
    scales = torch.exp(torch.randn(d_in, generator=g))  # log-normal column scales: outlier features
    acc = GramAccumulator(d_in)
    acc.update(torch.randn(tokens, d_in, generator=g) * scales)
    problem = acc.problem(weight, PerRow(per_row_k(d_in, 0.5)))
    device = torch.device("cpu")
    a, gram32 = problem.weight.float(), problem.gram.float()

    def best(fn, reps):
        out = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t)
        return out

    gemm = best(lambda: a @ gram32, 3)
    t = time.perf_counter()
    wanda = solvers.solve("wanda", problem)
    wanda_s = time.perf_counter() - t
    verify = best(lambda: evaluate(problem, wanda.mask), 2)
    backend = resolve_backend("auto", device, None)
    gd = gram_data(problem.gram, torch.float32, device, None)
    state = init_state(gd, problem.weight, wanda.mask, torch.arange(d_out), backend=backend)
    sweep = best(lambda: search_sweep(gd, state, 512 << 20, threshold=-1e-6 * state.loss), 2)
    gemm = min(gemm, best(lambda: a @ gram32, 3))
    return {"shape": shape, "tokens": tokens, "backend": backend, "gemm_s": gemm, "wanda_solve_s": wanda_s,
            "verify_s": verify, "sweep_s": sweep, "sweep_per_gemm": sweep / gemm, "verify_per_gemm": verify / gemm,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def sweep_run(shape: str, tokens: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "bench.studies.scale", "--sweep-one", shape, "--sweep-tokens", str(tokens)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"shape": shape, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"shape": shape, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main
def machine() -> dict:
    import torch

    info = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        info["mem_total_gib"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    return info


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", default="2,4", help="comma list of block counts B (default 2,4)")
    ap.add_argument("--solvers", default="wanda,sparsegpt,wanda+swap", help="comma list (default wanda,sparsegpt,wanda+swap)")
    ap.add_argument("--nsamples", type=int, default=4)
    ap.add_argument("--seqlen", type=int, default=128)
    ap.add_argument("--eval-windows", type=int, default=2, help="held-out windows per perplexity (default 2)")
    ap.add_argument("--time-limit", type=float, default=30.0, help="seconds per layer for refiners (default 30)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"))
    ap.add_argument("--offload", default="auto", choices=("auto", "on", "off"))
    ap.add_argument("--device", default=None, help="torch device for the prunes (default: cuda if available)")
    ap.add_argument("--sweeps", default="", help=f"7B shapes for the 1-swap sweep / verification timing, e.g. "
                                                 f"{','.join(SHAPES_7B)} (default: none)")
    ap.add_argument("--sweep-tokens", type=int, default=512, help="calibration tokens of the sweep problems (default 512)")
    ap.add_argument("--sweep-timeout", type=float, default=900.0)
    ap.add_argument("--workdir", default="/tmp/maskbench-scale", help="where the models are written (reused)")
    ap.add_argument("--out", default="scale.json")
    ap.add_argument("--force", action="store_true", help="replace an existing --out")
    ap.add_argument("--dims", default=f"{HIDDEN},{INTERMEDIATE},{HEADS},{VOCAB}",
                    help="hidden,intermediate,heads,vocabulary of the model (default: LLaMA-7B's)")
    ap.add_argument("--write", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sweep-one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        dims = tuple(int(x) for x in args.dims.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1:
        _fail(f"--dims must be four positive integers hidden,intermediate,heads,vocabulary, got {args.dims!r}")
    if args.write:
        write_model(Path(args.write), int(args.blocks), dims)
        return 0
    if args.sweep_one:
        print(json.dumps(sweep_measurement(args.sweep_one, args.sweep_tokens)))
        return 0
    from bench.paths import atomic_write_text

    try:
        blocks = [int(b) for b in args.blocks.split(",") if b.strip()]
    except ValueError:
        _fail(f"--blocks must be a comma list of integers, got {args.blocks!r}")
    if not blocks or min(blocks) < 1:
        _fail("--blocks needs at least one positive block count")
    out_path = Path(args.out)
    if out_path.exists() and not args.force:
        _fail(f"{out_path} exists; choose another --out or pass --force")
    solvers_list = [s.strip() for s in args.solvers.split(",") if s.strip()]
    result = {"command": " ".join(["python -m bench.studies.scale", *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit(), "machine": machine(),
              "nsamples": args.nsamples, "seqlen": args.seqlen, "runs": [], "sweeps": []}
    for b in blocks:
        directory = ensure_model(Path(args.workdir), b, dims)
        size = weight_bytes(directory)
        for solver in solvers_list:
            run = prune_run(directory, solver, args) | {"blocks": b, "model_mib": size / 2**20}
            result["runs"].append(run)
            atomic_write_text(out_path, json.dumps(result, indent=2))
            if "error" in run:
                print(f"B={b} {solver:<12} error: {run['error']}", flush=True)
                continue
            m = run["per_block_mean"]
            print(f"B={b} {solver:<12} model {size / 2**30:5.2f} GiB  peak RSS {run['peak_rss_mib'] / 1024:5.2f} GiB "
                  f"(+{(run['peak_rss_mib'] - size / 2**20) / 1024:4.2f})  per block: "
                  + " ".join(f"{k} {v:6.1f}s" for k, v in m.items())
                  + f"  = {run['block_total_mean']:6.1f}s  (block 0: {sum(run['first_block'].values()):.1f}s)  "
                  f"wall {run['wall_s']:.0f}s cpu {run['cpu_s']:.0f}s load {run['load_average']:.1f}", flush=True)
    for shape in [s.strip() for s in args.sweeps.split(",") if s.strip()]:
        sweep = sweep_run(shape, args.sweep_tokens, args.sweep_timeout)
        result["sweeps"].append(sweep)
        atomic_write_text(out_path, json.dumps(result, indent=2))
        if "error" in sweep:
            print(f"{shape:>11}: error: {sweep['error']}", flush=True)
        else:
            print(f"{shape:>11}: gemm {sweep['gemm_s']:.2f}s  1-swap sweep {sweep['sweep_s']:.2f}s "
                  f"(sweep/gemm {sweep['sweep_per_gemm']:.2f})  float64 verification {sweep['verify_s']:.2f}s "
                  f"(verify/gemm {sweep['verify_per_gemm']:.2f})  wanda solve {sweep['wanda_solve_s']:.2f}s  "
                  f"peak RSS {sweep['peak_rss_mib'] / 1024:.2f} GiB", flush=True)
    print(f"results in {out_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
