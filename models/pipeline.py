"""The whole-model pipeline: load once, calibrate, then prune with any solver and evaluate.

Shared by ``maskbench prune``, ``python -m bench.studies.prune_models`` and the runner's ``[[prune]]`` tasks
so that all three follow one protocol. A :class:`PruningSession` loads the model and the
calibration / held-out tokens once, and each :meth:`PruningSession.prune` call restores the dense
weights first, so several solvers can be compared on the same model, windows and held-out text.
The dense weights are read back from the memory-mapped checkpoint (or a temporary on-disk snapshot),
never from a second copy in memory (:mod:`models.restore`). The model is stored in ``dtype``
(:mod:`models.precision`) and, with ``offload``, pruned and evaluated block by block from the CPU
(:mod:`models.offload`); both are recorded in the results' metadata.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

import torch

from models.calibration import load_corpus, prepare
from models.loading import load_model
from models.offload import blockwise_perplexity
from models.perplexity import Perplexity, perplexity
from models.restore import DenseWeights
from models.sequential import PruneReport, PruneSettings, prepare_solvers, prune_model


@dataclass(frozen=True)
class CalibrationJob:
    """Model, corpus and protocol parameters (see :mod:`models.calibration`)."""

    model: str | None = None          # None / "smollm2-135m": the default SmolLM2-135M GGUF
    nsamples: int = 32
    seqlen: int = 256
    seed: int = 0
    calib_text: tuple[str, ...] | None = None
    eval_fraction: float = 0.1
    batch_size: int = 8
    device: str | None = None
    eval_windows: int | None = None   # cap on held-out windows (None: all)
    propagation: str = "pruned"
    dtype: str = "auto"               # storage precision: auto (the checkpoint's), float16, bfloat16, float32
    offload: str = "auto"             # block-wise execution from the CPU: auto, on, off


@dataclass
class PruneOutcome:
    settings: PruneSettings
    report: PruneReport
    perplexity: Perplexity
    stage_seconds: dict[str, float] = field(default_factory=dict)


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process (MiB) and, on CUDA, peak allocated GPU memory."""
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if torch.cuda.is_available():
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


class PruningSession:
    def __init__(self, job: CalibrationJob, progress: bool = False):
        t0 = time.perf_counter()
        self.job, self.progress = job, progress
        if not progress:  # --no-progress also silences transformers' own "Loading weights" bar
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        self.loaded = load_model(job.model, device=job.device, dtype=job.dtype, offload=job.offload)
        corpus = load_corpus(list(job.calib_text) if job.calib_text else None)
        self.data = prepare(self.loaded.tokenizer, corpus, job.nsamples, job.seqlen, job.seed, job.propagation,
                            job.eval_fraction)
        self.metadata = dict(self.data.protocol.metadata(), model=self.loaded.name,
                             weights=self.loaded.source.weights_note,
                             weights_digest=self.loaded.source.weights_digest, model_class=type(self.loaded.model).__name__,
                             **self.loaded.placement.metadata())
        self.stage_seconds = {"load_and_tokenize": time.perf_counter() - t0}
        self._dense: DenseWeights | None = None  # set up before the first prune
        self._dense_ppl: Perplexity | None = None
        self._dirty = False

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    def evaluate(self) -> Perplexity:
        placement = self.loaded.placement
        if placement.offload:
            return blockwise_perplexity(self.model, self.data.held_out, self.job.seqlen, placement,
                                        self.job.batch_size, self.job.eval_windows, self.progress)
        return perplexity(self.model, self.data.held_out, self.job.seqlen, self.job.batch_size,
                          self.job.eval_windows, self.progress)

    def dense_perplexity(self) -> Perplexity:
        """Perplexity of the dense model (computed once)."""
        if self._dense_ppl is None:
            self.restore_dense()
            t = time.perf_counter()
            self._dense_ppl = self.evaluate()
            self.stage_seconds["dense_perplexity"] = time.perf_counter() - t
        return self._dense_ppl

    def restore_dense(self) -> None:
        if self._dirty:
            self._dense.restore()
            self._dirty = False

    def prune(self, settings: PruneSettings) -> PruneOutcome:
        """Restore the dense weights, prune sequentially with ``settings``, evaluate perplexity."""
        if settings.propagation != self.job.propagation:
            raise ValueError(f"session calibrated for propagation {self.job.propagation!r}, "
                             f"settings ask for {settings.propagation!r}")
        self.restore_dense()
        if self._dense is None:
            self._dense = DenseWeights(self.model, self.loaded.checkpoint_files)
        self._dirty = True
        t = time.perf_counter()
        prepare_solvers(settings)  # e.g. compiling a kernel: not part of the prune's time
        t_prepare = time.perf_counter() - t
        t = time.perf_counter()
        report = prune_model(self.model, self.data.windows, settings, self.metadata, self.progress,
                             self.loaded.placement)
        stages = {"prepare_solvers": t_prepare, "prune": time.perf_counter() - t,
                  **{f"prune.{k}": v for k, v in report.stage_seconds.items()}}
        t = time.perf_counter()
        ppl = self.evaluate()
        stages["pruned_perplexity"] = time.perf_counter() - t
        return PruneOutcome(settings, report, ppl, stages)
