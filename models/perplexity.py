"""Perplexity on held-out text — the Wanda/SparseGPT protocol.

The held-out ids are cut into non-overlapping windows of ``seqlen`` tokens (stride ``seqlen``,
remainder dropped; :func:`models.calibration.eval_windows`). In each window every token after
the first is predicted from its prefix inside the window, giving ``seqlen − 1`` negative
log-likelihoods ``−log p(t_i | t_<i)`` (nats). ``ppl = exp(mean NLL)`` over all predicted
tokens of all windows. (Wanda/SparseGPT compute ``exp(Σ_w L·mean_w / (n·L))``; since every
window has the same count this is the same number.) Logits are cast to float32 for the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.calibration import eval_windows


@dataclass
class Perplexity:
    ppl: float
    mean_nll: float          # nats per predicted token
    tokens: int              # predicted tokens = windows · (seqlen − 1)
    windows: int
    seqlen: int


def window_nll_sum(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Σ NLL over the shifted positions of each window: logits [n, L, V], ids [n, L] → [n]."""
    nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                          reduction="none")
    return nll.reshape(ids.shape[0], -1).sum(dim=1)


@torch.no_grad()
def perplexity(model: torch.nn.Module, held_out: torch.Tensor, seqlen: int, batch_size: int = 4,
               max_windows: int | None = None, progress: bool = True) -> Perplexity:
    """Perplexity of ``model`` on non-overlapping ``seqlen`` windows of ``held_out`` ids."""
    windows = eval_windows(held_out, seqlen, max_windows)
    device = next(model.parameters()).device
    total = 0.0
    model.eval()
    for i in tqdm(range(0, len(windows), batch_size), desc="perplexity", unit="batch", disable=not progress):
        ids = windows[i:i + batch_size].to(device)
        logits = model(input_ids=ids, use_cache=False).logits
        total += float(window_nll_sum(logits, ids).sum())
    tokens = len(windows) * (seqlen - 1)
    mean = total / tokens
    return Perplexity(math.exp(mean), mean, tokens, len(windows), seqlen)
