"""Zero-shot accuracy of an in-memory model through lm-eval (EleutherAI's lm-evaluation-harness).

The call is the one the SparseSwaps authors' group makes on the pruned model:
``lm_eval.simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer, …), tasks=[…], num_fewshot=0)``
— the harness tokenises, scores every choice by its log-likelihood and reports per task ``acc``
(argmax of the summed log-likelihood) and ``acc_norm`` (argmax of the log-likelihood per byte of
the choice) with their standard errors. Papers differ in which of the two they print per task,
so both are kept. ``paper7`` names the seven tasks of Wanda / SparseGPT / DSnoT / RIA tables:
BoolQ, RTE, HellaSwag, WinoGrande, ARC-easy, ARC-challenge, OpenBookQA (hub data sets: they
need the ``datasets`` cache or a network). Tasks defined in YAML files are found through
``include`` folders (lm-eval's ``TaskManager(include_path=…)``); maskbench's own offline task
``pydoc_continuation`` (:mod:`models.local_task`) is always on that path.

Results move between harness versions (HellaSwag changed between 0.3 and 0.4), so every result
records the harness version, each task's version, n-shot and the limit. The extra ``.[eval]``
pins the tested version.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import torch

from models.errors import CalibrationError
from models.local_task import tasks_dir

PAPER7 = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
METRICS = ("acc", "acc_norm")


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"paper7"`` → the seven tasks; otherwise comma-separated task names, order kept, duplicates dropped."""
    names: list[str] = []
    for item in str(text).split(","):
        item = item.strip()
        for name in (PAPER7 if item.lower() == "paper7" else (item,) if item else ()):
            if name not in names:
                names.append(name)
    if not names:
        raise CalibrationError(f"--zero-shot {text!r}: no task named")
    return tuple(names)


@dataclass(frozen=True)
class ZeroShotSettings:
    tasks: tuple[str, ...]
    limit: int | None = None            # examples per task (None: all)
    include: tuple[str, ...] = ()       # extra folders of task YAML files
    batch_size: int = 8
    num_fewshot: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise CalibrationError(f"--zero-shot-limit must be positive, got {self.limit}")


@dataclass
class ZeroShotResult:
    """Per task ``{acc, acc_stderr, acc_norm, acc_norm_stderr, n_shot, samples, version}`` plus the harness."""

    tasks: dict[str, dict] = field(default_factory=dict)
    harness: str = ""
    limit: int | None = None
    seconds: float = 0.0

    def mean(self, metric: str = "acc") -> float | None:
        """Mean over tasks of ``metric`` (the papers' "Mean" column); None if a task lacks it."""
        values = [t.get(metric) for t in self.tasks.values()]
        if not values or any(v is None for v in values):
            return None
        return sum(values) / len(values)

    def to_json(self) -> dict:
        return {"harness": self.harness, "limit": self.limit, "seconds": self.seconds, "tasks": self.tasks,
                "mean_acc": self.mean("acc"), "mean_acc_norm": self.mean("acc_norm")}


def _lm_eval():
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise CalibrationError("--zero-shot needs lm-eval: pip install 'maskbench[eval]'") from None
    return lm_eval, HFLM, TaskManager


def check_tasks(settings: ZeroShotSettings) -> None:
    """Fail before any pruning when a task name is unknown to lm-eval (with the include folders)."""
    _, _, TaskManager = _lm_eval()
    manager = TaskManager(include_path=[str(tasks_dir()), *settings.include])
    unknown = [t for t in settings.tasks if t not in manager.all_tasks]
    if unknown:
        raise CalibrationError(f"--zero-shot: unknown lm-eval task(s) {', '.join(unknown)} "
                               f"(task YAML folders: --zero-shot-include DIR)")


def _finite(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


@torch.no_grad()
def evaluate_zero_shot(model: torch.nn.Module, tokenizer, settings: ZeroShotSettings,
                       progress: bool = True) -> ZeroShotResult:
    """Run ``settings.tasks`` on the in-memory ``model`` (lm-eval shows a bar per request type)."""
    import time

    lm_eval, HFLM, TaskManager = _lm_eval()
    t0 = time.perf_counter()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    device = str(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size, device=device)
    manager = TaskManager(include_path=[str(tasks_dir()), *settings.include])
    quiet = os.environ.get("TQDM_DISABLE")
    if not progress:  # lm-eval's own bars (tokenising, requests) honour tqdm's environment switch
        os.environ["TQDM_DISABLE"] = "1"
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=list(settings.tasks), num_fewshot=settings.num_fewshot,
                                      limit=settings.limit, task_manager=manager, log_samples=False,
                                      verbosity="ERROR", bootstrap_iters=100000)
    except (ConnectionError, OSError) as exc:
        raise CalibrationError(f"lm-eval could not load the data of {', '.join(settings.tasks)} "
                               f"(nothing is downloaded here: {str(exc).splitlines()[0]})") from None
    finally:
        model.train(was_training)
        if not progress and quiet is None:
            del os.environ["TQDM_DISABLE"]
        elif not progress:
            os.environ["TQDM_DISABLE"] = quiet
    result = ZeroShotResult(harness=f"lm-eval {out.get('lm_eval_version', lm_eval.__version__)}", limit=settings.limit)
    for task in settings.tasks:
        row = out["results"].get(task, {})
        entry = {m: _finite(row.get(f"{m},none")) for m in METRICS}
        entry.update({f"{m}_stderr": _finite(row.get(f"{m}_stderr,none")) for m in METRICS})
        entry.update(n_shot=out.get("n-shot", {}).get(task), version=out.get("versions", {}).get(task),
                     samples=out.get("n-samples", {}).get(task, {}).get("effective"))
        result.tasks[task] = entry
    result.seconds = time.perf_counter() - t0
    return result
