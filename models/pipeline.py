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
from dataclasses import dataclass, field, replace

import torch

from models.dense_check import check_dense, vocabulary_size
from models.loading import load_model
from models.offload import blockwise_perplexity
from models.perplexity import Perplexity, perplexity
from models.protocol_data import evaluation_data, model_max_positions, preflight, prepare_datasets
from models.restore import DenseWeights
from models.run_record import environment_record
from models.sequential import PruneReport, PruneSettings, prepare_solvers, prune_model


@dataclass(frozen=True)
class CalibrationJob:
    """Model, corpus and protocol parameters (see :mod:`models.calibration`)."""

    model: str | None = None          # None / "smollm2-135m": the default SmolLM2-135M GGUF
    nsamples: int = 32
    seqlen: int | None = 256       # None: the model's maximum positions (the papers' choice)
    seed: int = 0
    calib_text: tuple[str, ...] | None = None
    eval_fraction: float = 0.1
    batch_size: int = 8
    device: str | None = None
    eval_windows: int | None = None   # cap on held-out windows (None: all)
    propagation: str = "pruned"
    calib_encoding: str = "utf-8"     # of the --calib-text files (strict decoding)
    calib_dataset: str | None = None  # models.datasets argument (None: calib_text files, else pydoc)
    eval_dataset: str | None = None   # None: the calibration dataset's evaluation split
    dense_check: bool = True          # stop when the dense perplexity shows a broken model (models.dense_check)
    extra_eval_datasets: tuple[str, ...] = ()  # further perplexity datasets (e.g. WikiText-2 and C4)
    dtype: str = "auto"               # storage precision: auto (the checkpoint's), float16, bfloat16, float32
    offload: str = "auto"             # block-wise execution from the CPU: auto, on, off

    def datasets(self) -> tuple[str | None, str | None]:
        """The dataset arguments; ``calib_text`` files are ``text:`` datasets (one corpus, split)."""
        if self.calib_dataset is None and self.calib_text and len(self.calib_text) == 1 \
                and self.calib_encoding == "utf-8":
            return f"text:{self.calib_text[0]}", self.eval_dataset
        return self.calib_dataset, self.eval_dataset


def evaluate_zero_shot(model, tokenizer, settings, progress):
    from models.zero_shot import evaluate_zero_shot as run

    return run(model, tokenizer, settings, progress)


@dataclass
class PruneOutcome:
    settings: PruneSettings
    report: PruneReport
    perplexity: Perplexity
    stage_seconds: dict[str, float] = field(default_factory=dict)
    extra_perplexity: dict[str, Perplexity] = field(default_factory=dict)


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
        preflight(*job.datasets(), job.extra_eval_datasets)  # a bad or uncached dataset fails before the model is loaded
        self.loaded = load_model(job.model, device=job.device, dtype=job.dtype, offload=job.offload)
        if job.seqlen is None:  # the papers' seqlen: the model's maximum positions
            self.job = job = replace(job, seqlen=model_max_positions(self.loaded.model))
        if job.calib_dataset is None and job.calib_text and job.datasets()[0] is None:  # several files, or not UTF-8
            from models.calibration import load_corpus, prepare

            self.data = prepare(self.loaded.tokenizer, load_corpus(list(job.calib_text), job.calib_encoding),
                                job.nsamples, job.seqlen, job.seed, job.propagation, job.eval_fraction)
        else:
            calib, evaluation = job.datasets()
            self.data = prepare_datasets(self.loaded.tokenizer, calib, evaluation, job.nsamples, job.seqlen, job.seed,
                                         job.propagation, job.eval_fraction)
        self.extra_eval = {name: evaluation_data(self.loaded.tokenizer, name, job.seqlen, job.eval_fraction)
                           for name in job.extra_eval_datasets}
        self.environment = environment_record(self.loaded.model)
        self.metadata = dict(self.data.protocol.metadata(), model=self.loaded.name,
                             weights=self.loaded.source.weights_note,
                             weights_digest=self.loaded.source.weights_digest, model_class=type(self.loaded.model).__name__,
                             **self.loaded.placement.metadata())
        self.stage_seconds = {"load_and_tokenize": time.perf_counter() - t0}
        self._dense: DenseWeights | None = None  # set up before the first prune
        self._dense_ppl: Perplexity | None = None
        self._dirty = False
        self._dense_zero_shot: dict = {}
        self._dense_extra: dict[str, Perplexity] | None = None

    @property
    def model(self) -> torch.nn.Module:
        return self.loaded.model

    def evaluate(self, held_out: torch.Tensor | None = None) -> Perplexity:
        """Perplexity on ``held_out`` token ids (default: the evaluation dataset's), block by block when
        the model is offloaded."""
        held_out = self.data.held_out if held_out is None else held_out
        placement = self.loaded.placement
        if placement.offload:
            return blockwise_perplexity(self.model, held_out, self.job.seqlen, placement,
                                        self.job.batch_size, self.job.eval_windows, self.progress)
        return perplexity(self.model, held_out, self.job.seqlen, self.job.batch_size,
                          self.job.eval_windows, self.progress)

    def dense_perplexity(self) -> Perplexity:
        """Perplexity of the dense model (computed once)."""
        if self._dense_ppl is None:
            self.restore_dense()
            t = time.perf_counter()
            self._dense_ppl = self.evaluate()
            self.stage_seconds["dense_perplexity"] = time.perf_counter() - t
            if self.job.dense_check:
                check_dense(self._dense_ppl, vocabulary_size(self.model), self.loaded.name,
                            self.metadata.get("evaluation", "the evaluation data"))
        return self._dense_ppl

    def evaluate_extra(self) -> dict[str, Perplexity]:
        """Perplexity on each further evaluation dataset (same windows rule, same cap)."""
        return {name: self.evaluate(e.ids) for name, e in self.extra_eval.items()}

    def dense_extra_perplexity(self) -> dict[str, Perplexity]:
        """The dense model's perplexity on the further evaluation datasets (computed once)."""
        if self._dense_extra is None:
            self.restore_dense()
            self._dense_extra = self.evaluate_extra()
        return self._dense_extra

    def perplexities(self, outcome: PruneOutcome) -> dict[str, dict]:
        """``{dataset: {dense, pruned, windows, seqlen}}`` for the main and the further evaluation datasets."""
        main = self.metadata.get("evaluation", "evaluation")
        out = {main: {"dense": self.dense_perplexity().ppl, "pruned": outcome.perplexity.ppl,
                      "windows": outcome.perplexity.windows, "seqlen": self.job.seqlen}}
        dense = self.dense_extra_perplexity()
        for name, ppl in outcome.extra_perplexity.items():
            out[name] = {"dense": dense[name].ppl, "pruned": ppl.ppl, "windows": ppl.windows, "seqlen": self.job.seqlen,
                         **{k: v for k, v in self.extra_eval[name].record(self.job.seqlen).items() if k != "windows"}}
        return out

    def dense_zero_shot(self, settings):
        """Zero-shot results of the dense model (computed once per session and task settings)."""
        if settings not in self._dense_zero_shot:
            self.restore_dense()
            self._dense_zero_shot[settings] = evaluate_zero_shot(self.model, self.loaded.tokenizer, settings,
                                                                 self.progress)
            self.stage_seconds["dense_zero_shot"] = self._dense_zero_shot[settings].seconds
        return self._dense_zero_shot[settings]

    def zero_shot(self, settings):
        """Zero-shot results of the model as it is now (after :meth:`prune`: the pruned model)."""
        return evaluate_zero_shot(self.model, self.loaded.tokenizer, settings, self.progress)

    def restore_dense(self) -> None:
        if self._dirty:
            self._dense.restore()
            self._dirty = False

    def prune(self, settings: PruneSettings) -> PruneOutcome:
        """Restore the dense weights, prune sequentially with ``settings``, evaluate perplexity."""
        if settings.propagation != self.job.propagation:
            raise ValueError(f"session calibrated for propagation {self.job.propagation!r}, "
                             f"settings ask for {settings.propagation!r}")
        self.dense_extra_perplexity()
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
        extra = self.evaluate_extra()
        stages["pruned_perplexity"] = time.perf_counter() - t
        return PruneOutcome(settings, report, ppl, stages, extra)
