"""``dsnot`` against a direct transcription of the released DSnoT code.

The transcription below follows github.com/zyxxmu/DSnoT (commit dd4e2ee),
``lib/layerwrapper.py::WrappedGPT.add_batch`` (the statistics) and
``lib/prune.py::prune_DSnoT`` (Wanda initial mask, unstructured and N:M branches) line by line,
with the code's variable names; comments quote the lines followed. Differences from the code
that do not change the algorithm: float64 instead of float32 (so that rounding cannot reorder
the sorts), plain tensors instead of the hooked ``nn.Linear``, ``args.*`` as arguments.

The crafted instance has calibration sequences of a stated ``seqlen`` = 64 that are
permutations of one another, so the per-sequence statistics of the code (mean, within-sequence
variance) equal the per-token statistics that ``GramAccumulator`` records; it is large enough
(128 pruned weights per row) that no pointer of either implementation walks into the other half
of its candidate list within 50 cycles, where the released code's stopped rows would otherwise
rewrite kept weights (see the module docstring of ``solvers.refiners.dsnot``).
"""

from __future__ import annotations

import pytest
import torch

import solvers
from solvers.pattern import NM, PerRow
from solvers.problem import MaskProblem

SEQLEN = 64
NSAMPLES = 8
D_IN = 256
D_OUT = 24


# ----------------------------------------------------------------------------- transcription
class ReleasedWrappedGPT:
    """``lib/layerwrapper.py::WrappedGPT`` — only the statistics DSnoT reads."""

    def __init__(self, columns: int):
        self.columns = columns
        self.nsamples = 0
        self.scaler_row = torch.zeros(columns, dtype=torch.float64)        # self.scaler_row = torch.zeros((self.columns))
        self.sum_metric_row = torch.zeros(columns, dtype=torch.float64)    # self.sum_metric_row = torch.zeros((self.columns))
        self.mean = torch.zeros(columns, dtype=torch.float64)
        self.var = torch.zeros(columns, dtype=torch.float64)
        self.ntokens = 0

    def add_batch(self, inp: torch.Tensor) -> None:
        if len(inp.shape) == 2:                                  # if len(inp.shape) == 2: inp = inp.unsqueeze(0)
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]                                       # tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()               # inp = inp.reshape((-1, inp.shape[-1])); inp = inp.t()
        mean_inp = torch.mean(inp, dim=1, keepdim=True)          # mean_inp = torch.mean(inp, dim=1, keepdim=True)
        var_inp = torch.var(inp, dim=1, unbiased=False, keepdim=True)
        num_inp = inp.shape[1]
        self.var = var_inp if self.ntokens == 0 else (self.var * self.ntokens + var_inp * num_inp) / (self.ntokens + num_inp)
        self.mean = mean_inp if self.ntokens == 0 else (self.mean * self.ntokens + mean_inp * num_inp) / (self.ntokens + num_inp)
        self.ntokens += num_inp
        self.scaler_row *= self.nsamples / (self.nsamples + tmp)       # self.scaler_row *= self.nsamples / (self.nsamples+tmp)
        self.sum_metric_row *= self.nsamples / (self.nsamples + tmp)   # self.sum_metric_row *= ...
        self.nsamples += tmp
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.nsamples   # ... ** 2  / self.nsamples
        self.sum_metric_row += torch.sum(inp, dim=1) / self.nsamples          # torch.sum(inp, dim=1) / self.nsamples


def released_return_reorder_indice(input_tensor: torch.Tensor) -> torch.Tensor:
    """``lib/prune.py::return_reorder_indice``."""
    positive_tensor = input_tensor.clone()
    negative_tensor = input_tensor.clone()
    positive_mask = positive_tensor > 0
    negative_mask = negative_tensor < 0
    positive_indices = torch.arange(0, input_tensor.shape[1]).to(torch.float64).repeat(input_tensor.shape[0], 1)
    negative_indices = torch.arange(0, input_tensor.shape[1]).to(torch.float64).repeat(input_tensor.shape[0], 1)
    positive_indices[~positive_mask] = float("inf")
    negative_indices[~negative_mask] = float("inf")
    positive_value, _ = torch.sort(positive_indices, dim=1)
    negative_value, _ = torch.sort(negative_indices, dim=1)
    positive_value = torch.flip(positive_value, dims=[1])
    negative_value[negative_value == float("inf")] = 0
    positive_value[positive_value == float("inf")] = 0
    return (positive_value + negative_value).to(torch.int64)


def released_prune_dsnot(weight: torch.Tensor, wrapped: ReleasedWrappedGPT, sparsity_ratio: float, prune_n: int = 0,
                         prune_m: int = 0, max_cycle_time: int = 50, update_threshold: float = 0.1,
                         pow_of_var_regrowing: float = 1.0, without_same_sign: bool = True) -> torch.Tensor:
    """``lib/prune.py::prune_DSnoT`` for one layer, ``initial_method="wanda"``; returns ``weight_mask`` (True = pruned)."""
    DSnoT_metric = weight * wrapped.sum_metric_row.reshape((1, -1))        # W * sum_metric_row.reshape((1, -1))
    initial_metric = torch.abs(weight) * torch.sqrt(wrapped.scaler_row.reshape((1, -1)))
    weight_mask = torch.zeros_like(initial_metric) == 1
    if prune_n != 0:
        initial_prune_indices = torch.zeros((initial_metric.shape[0], 0), dtype=torch.int64)
        initial_res_indices = torch.zeros((initial_metric.shape[0], 0), dtype=torch.int64)
        for ii in range(initial_metric.shape[1]):
            if ii % prune_m == 0:
                tmp = initial_metric[:, ii:(ii + prune_m)]
                _, tmp_all_indices = torch.sort(tmp, dim=1)
                tmp_all_indices += ii
                res_prune_n = prune_m - prune_n
                tmp_indices, tmp_res_indices = torch.split(tmp_all_indices, split_size_or_sections=[prune_n, res_prune_n], dim=1)
                initial_prune_indices = torch.cat((initial_prune_indices, tmp_indices), dim=1)
                initial_res_indices = torch.cat((initial_res_indices, tmp_res_indices), dim=1)
                weight_mask.scatter_(1, tmp_indices, True)
        metric_for_regrowing = DSnoT_metric.clone()
        metric_for_regrowing.scatter_(1, initial_res_indices, 0)
        reconstruction_error = torch.sum(metric_for_regrowing, dim=1, keepdim=True)
        initialize_error_sign = torch.sign(reconstruction_error)
        if pow_of_var_regrowing:
            metric_for_regrowing /= torch.pow(wrapped.var.reshape((1, -1)), pow_of_var_regrowing)
        _, regrowing_indices_block = torch.sort(metric_for_regrowing, dim=1, stable=True)
        indice_indice_list_for_regrowing = torch.zeros((reconstruction_error.shape[0], 2), dtype=torch.long)
        last_one = regrowing_indices_block.shape[-1] - 1
        indice_indice_list_for_regrowing[:, 1] = last_one
        update_num_for_regrowing = torch.ones((reconstruction_error.shape[0], 2), dtype=torch.long)
        update_num_for_regrowing[:, 1] = -1
        initial_metric.scatter_(1, initial_prune_indices, float("inf"))
        W_metric_max_value = torch.max(initial_metric, dim=1, keepdim=True)[0] + 1
        cycle_time = 1
        update_mask = torch.ones_like(reconstruction_error, dtype=torch.bool)
        while not (torch.all(update_mask == False) or cycle_time > max_cycle_time):  # noqa: E712 (as released)
            cycle_time += 1
            indice_of_indice_indice_list_for_regrowing = (reconstruction_error > 0).int().to(torch.int64)
            indice_indice_for_regrowing = torch.gather(indice_indice_list_for_regrowing, 1,
                                                       indice_of_indice_indice_list_for_regrowing)
            regrowing_indice = torch.gather(regrowing_indices_block, 1, indice_indice_for_regrowing.to(torch.int64))
            regrowing_metric = DSnoT_metric.gather(1, regrowing_indice.to(torch.int64))
            recover_block_start_indice = regrowing_indice - regrowing_indice % prune_m
            recover_block_indices = (torch.arange(0, prune_m).repeat(recover_block_start_indice.shape[1], 1)
                                     + recover_block_start_indice)
            pruning_block = torch.gather(initial_metric, 1, recover_block_indices.to(torch.int64))
            pruning_wanda_metric, pruning_indice = torch.topk(pruning_block, 1, dim=1, largest=False)
            pruning_indice += recover_block_start_indice
            pruning_metric = DSnoT_metric.gather(1, pruning_indice.to(torch.int64))
            reconstruction_error_after = reconstruction_error + pruning_metric - regrowing_metric
            update_mask = (update_mask & (initialize_error_sign == torch.sign(reconstruction_error_after))
                           & (abs(reconstruction_error) > update_threshold))
            initial_metric.scatter_(1, pruning_indice, W_metric_max_value)
            weight_mask.scatter_(1, pruning_indice, update_mask)
            weight_mask.scatter_(1, regrowing_indice, ~update_mask)
            reconstruction_error += torch.where(update_mask, pruning_metric, torch.zeros_like(pruning_metric))
            reconstruction_error -= torch.where(update_mask, regrowing_metric, torch.zeros_like(regrowing_metric))
            indice_indice_list_for_regrowing.scatter_(
                1, indice_of_indice_indice_list_for_regrowing,
                indice_indice_for_regrowing + update_num_for_regrowing.gather(1, indice_of_indice_indice_list_for_regrowing))
        return weight_mask
    # else: unstructured
    _, sorted_initial_indice = torch.sort(initial_metric, dim=-1, stable=True)
    sparsity_num = int(initial_metric.shape[1] * sparsity_ratio)
    res_sparsity_num = sorted_initial_indice.shape[1] - sparsity_num
    initial_prune_indices, initial_res_indices = torch.split(sorted_initial_indice,
                                                             split_size_or_sections=[sparsity_num, res_sparsity_num], dim=1)
    weight_mask.scatter_(1, initial_prune_indices, True)
    metric_for_regrowing = DSnoT_metric.clone()
    wanda_metric = torch.abs(weight) * torch.sqrt(wrapped.scaler_row.reshape((1, -1)))
    metric_for_regrowing.scatter_(1, initial_res_indices, 0)
    reconstruction_error = torch.sum(metric_for_regrowing, dim=1, keepdim=True)
    initialize_error_sign = torch.sign(reconstruction_error)
    if pow_of_var_regrowing:
        metric_for_regrowing /= torch.pow(wrapped.var.reshape((1, -1)), pow_of_var_regrowing)
    _, regrowing_indices_block = torch.sort(metric_for_regrowing, dim=1, stable=True)
    wanda_metric.scatter_(1, initial_prune_indices, float("inf"))
    wanda_res_indices, _ = torch.split(torch.sort(wanda_metric, dim=1, stable=True)[1],
                                       split_size_or_sections=[res_sparsity_num, sparsity_num], dim=1)
    reorder_indice_of_pruning_indice = released_return_reorder_indice(torch.gather(DSnoT_metric, 1, wanda_res_indices))
    pruning_indices_block = torch.gather(wanda_res_indices, 1, reorder_indice_of_pruning_indice)
    indice_indice_list_for_regrowing = torch.zeros((reconstruction_error.shape[0], 2), dtype=torch.long)
    last_one = regrowing_indices_block.shape[-1] - 1
    indice_indice_list_for_regrowing[:, 1] = last_one
    update_num_for_regrowing = torch.ones((reconstruction_error.shape[0], 2), dtype=torch.long)
    update_num_for_regrowing[:, 1] = -1
    indice_indice_list_for_pruning = torch.zeros((reconstruction_error.shape[0], 2), dtype=torch.long)
    last_one = pruning_indices_block.shape[-1] - 1
    indice_indice_list_for_pruning[:, 1] = last_one
    update_num_for_pruning = torch.ones((reconstruction_error.shape[0], 2), dtype=torch.long)
    update_num_for_pruning[:, 1] = -1
    update_mask = torch.ones_like(reconstruction_error, dtype=torch.bool)
    cycle_time = 0
    while not (torch.all(update_mask == False) or cycle_time >= max_cycle_time):  # noqa: E712 (as released)
        cycle_time += 1
        # regrowing
        indice_of_indice_indice_list_for_regrowing = (reconstruction_error > 0).int().to(torch.int64)
        indice_indice_for_regrowing = torch.gather(indice_indice_list_for_regrowing, 1,
                                                   indice_of_indice_indice_list_for_regrowing)
        regrowing_indice = torch.gather(regrowing_indices_block, 1, indice_indice_for_regrowing.to(torch.int64))
        regrowing_metric = DSnoT_metric.gather(1, regrowing_indice.to(torch.int64))
        indice_indice_list_for_regrowing.scatter_(
            1, indice_of_indice_indice_list_for_regrowing,
            indice_indice_for_regrowing + update_num_for_regrowing.gather(1, indice_of_indice_indice_list_for_regrowing))
        # pruning
        indice_of_indice_indice_list_for_pruning = (reconstruction_error < 0).int().to(torch.int64)
        indice_indice_for_pruning = torch.gather(indice_indice_list_for_pruning, 1, indice_of_indice_indice_list_for_pruning)
        pruning_indice = torch.gather(pruning_indices_block, 1, indice_indice_for_pruning.to(torch.int64))
        pruning_metric = DSnoT_metric.gather(1, pruning_indice.to(torch.int64))
        indice_indice_list_for_pruning.scatter_(
            1, indice_of_indice_indice_list_for_pruning,
            indice_indice_for_pruning + update_num_for_pruning.gather(1, indice_of_indice_indice_list_for_pruning))
        # change mask
        reconstruction_error_after = reconstruction_error + pruning_metric - regrowing_metric
        if without_same_sign:
            update_mask = update_mask & (abs(reconstruction_error) > update_threshold)
        else:
            update_mask = (update_mask & (abs(reconstruction_error) > update_threshold)
                           & (initialize_error_sign == torch.sign(reconstruction_error_after)))
        weight_mask.scatter_(1, pruning_indice, update_mask)
        weight_mask.scatter_(1, regrowing_indice, ~update_mask)
        reconstruction_error += torch.where(update_mask, pruning_metric, torch.zeros_like(pruning_metric))
        reconstruction_error -= torch.where(update_mask, regrowing_metric, torch.zeros_like(regrowing_metric))
    return weight_mask


# ----------------------------------------------------------------------------- crafted instance
def _crafted(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [D_OUT, D_IN], sequences [NSAMPLES, SEQLEN, D_IN])``, sequences = permutations of one.

    Column means of size ~0.05–0.5 give per-row errors ``Σ_P W_ij·seqlen·E[x_j]`` of order 1–10
    in the code's units: well above the 0.1 threshold at the start, and of order 0.01–0.1 per
    token, where a per-token threshold of 0.1 would leave most rows untouched.
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(SEQLEN, D_IN, generator=g, dtype=torch.float64)
    base = base * (0.5 + torch.rand(D_IN, generator=g, dtype=torch.float64))        # per-column scale → Var differs
    base = base + 0.5 * (torch.rand(D_IN, generator=g, dtype=torch.float64) - 0.5)   # per-column mean
    sequences = torch.stack([base[torch.randperm(SEQLEN, generator=g)] for _ in range(NSAMPLES)])
    weight = torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64) / D_IN ** 0.5
    return weight, sequences


def _ours_and_released(pattern, seqlen_meta: str | None, **released_kwargs):
    weight, sequences = _crafted()
    wrapped = ReleasedWrappedGPT(D_IN)
    for j in range(NSAMPLES):                    # for j in range(args.nsamples): outs[j] = layer(inps[j].unsqueeze(0), ...)
        wrapped.add_batch(sequences[j].unsqueeze(0))
    released_pruned = released_prune_dsnot(weight, wrapped, 0.5, **released_kwargs)
    meta = {} if seqlen_meta is None else {"seqlen": seqlen_meta}
    problem = MaskProblem.from_activations(weight, sequences, pattern, metadata=meta)
    ours = solvers.solve("dsnot", problem)
    wanda = solvers.solve("wanda", problem)
    return problem, ours, wanda, released_pruned


def test_statistics_match_the_released_units():
    """``sum_metric_row`` = seqlen · E[x]; Wanda's ``scaler_row`` ∝ diag G; ``var`` = Var (permuted sequences)."""
    weight, sequences = _crafted()
    wrapped = ReleasedWrappedGPT(D_IN)
    for j in range(NSAMPLES):
        wrapped.add_batch(sequences[j].unsqueeze(0))
    problem = MaskProblem.from_activations(weight, sequences, PerRow(D_IN // 2))
    torch.testing.assert_close(wrapped.sum_metric_row, SEQLEN * problem.input_mean, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(wrapped.scaler_row, torch.diagonal(problem.gram) / NSAMPLES, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(wrapped.var.reshape(-1), problem.input_var, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pattern, kwargs", [(PerRow(D_IN // 2), {}), (NM(2, 4), {"prune_n": 2, "prune_m": 4})])
def test_same_swaps_as_released_code(pattern, kwargs):
    problem, ours, wanda, released_pruned = _ours_and_released(pattern, str(SEQLEN), **kwargs)
    assert ours.settings["seqlen"] == SEQLEN and ours.extra["seqlen_source"] == "instance metadata"
    # the released code's mask keeps the pattern on this instance (no pointer ran into the other half)
    assert bool(pattern.is_feasible(~released_pruned).all())
    # same warm start: the released Wanda selection equals ours
    changed = (ours.mask != wanda.mask).any(dim=1)
    assert int(changed.sum()) >= D_OUT // 2, "the instance must make DSnoT act on most rows"
    assert torch.equal(ours.mask, ~released_pruned)
    # every row stopped (threshold or sign) before 50 cycles, so the threshold's units are exercised
    assert ours.extra["rows_still_active"] == 0 and ours.extra["cycles"] < 50


def test_per_token_units_would_differ():
    """With the threshold in per-token units (seqlen 1) the swaps are different: the units matter here."""
    _, ours, _, released_pruned = _ours_and_released(PerRow(D_IN // 2), "1")
    assert ours.extra["seqlen_source"] == "instance metadata"
    assert not torch.equal(ours.mask, ~released_pruned)


def test_default_seqlen_without_metadata():
    """Instances recording no seqlen use DEFAULT_SEQLEN (2048), stated in the result."""
    from solvers.refiners.dsnot import DEFAULT_SEQLEN
    problem, ours, _, _ = _ours_and_released(PerRow(D_IN // 2), None)
    assert ours.settings["seqlen"] == DEFAULT_SEQLEN == 2048 and ours.extra["seqlen_source"] == "default"
    forced = solvers.solve("dsnot", problem, seqlen=SEQLEN)
    assert forced.settings["seqlen"] == SEQLEN and forced.extra["seqlen_source"] == "setting"
