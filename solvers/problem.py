"""The layer-wise mask-selection problem.

A linear layer with weights ``W`` (``d_out × d_in``) sees calibration inputs
``X`` (``tokens × d_in``); ``G = XᵀX`` is their (un-normalised) Gram matrix.
Choosing a keep-mask ``M`` costs ``f(M) = ‖XWᵀ − X(M⊙W)ᵀ‖²_F`` (see
:mod:`solvers.objective`). :class:`MaskProblem` bundles ``W``, ``G``, the
sparsity pattern and optional per-input statistics (mean / variance of ``x_j``,
needed by DSnoT) with provenance metadata.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from solvers.errors import ProblemError
from solvers.pattern import Pattern

SYMMETRY_RTOL = 1e-5
SCALE_LOG10_RANGE = (-290, 290)
"""log10 range of max|W|²·max G_jj inside which the float64 objective neither underflows nor overflows."""
"""Max |G − Gᵀ| allowed, relative to max |G|."""

FACTOR_RTOL = 1e-5
"""Max |vᵀGv − ‖Xv‖²| relative to trace(G) on the probes of :meth:`MaskProblem._check_factor`."""

FACTOR_MAX_FRACTION = 0.5
""":class:`GramAccumulator` keeps the tokens as ``gram_factor`` while ``tokens ≤ this · d_in``: then
verifying a mask through them costs at most the ``d_out·d_in²/2`` of the symmetric Gram form."""

PSD_TOL = {torch.float64: 1e-8, torch.float32: 1e-4}
"""G must admit a Cholesky factor after adding ``tol · mean(diag G) · I``."""


def as_tensor(x, name: str) -> torch.Tensor:
    """Convert numpy / list / tensor input to a CPU tensor, keeping float32/float64."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dtype not in (torch.float32, torch.float64):
        if x.is_floating_point():
            x = x.to(torch.float32)
        else:
            raise ProblemError(f"{name}: expected a floating-point array, got dtype {x.dtype}")
    return x


@dataclass
class MaskProblem:
    """One mask-selection instance.

    Attributes:
        weight: ``W`` [d_out, d_in], float32 or float64.
        gram: ``G = XᵀX`` [d_in, d_in], symmetric PSD, units of (input)².
        pattern: :class:`~solvers.pattern.PerRow` or :class:`~solvers.pattern.NM`.
        input_mean: optional ``E[x_j]`` [d_in] over calibration tokens.
        input_var: optional ``Var[x_j]`` [d_in] over calibration tokens.
        gram_factor: optional ``X`` [tokens, d_in] with ``G = XᵀX`` (the calibration inputs
            themselves, kept by :class:`GramAccumulator` while there are fewer tokens than
            ``d_in/2``). Only :mod:`solvers.objective` uses it, to verify masks through the tokens
            (``d_out·d_in·tokens`` instead of ``d_out·d_in²/2`` multiply-adds). It is checked
            against ``G`` with random probes (:meth:`check`), is not saved with instances and
            does not enter :meth:`instance_id`.
        metadata: provenance strings (model, layer, calibration, nsamples, seqlen, seed, source …).
    """

    weight: torch.Tensor
    gram: torch.Tensor
    pattern: Pattern
    input_mean: torch.Tensor | None = None
    input_var: torch.Tensor | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    validate: bool = True
    gram_factor: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.weight = as_tensor(self.weight, "weight")
        self.gram = as_tensor(self.gram, "gram")
        if self.input_mean is not None:
            self.input_mean = as_tensor(self.input_mean, "input_mean")
        if self.input_var is not None:
            self.input_var = as_tensor(self.input_var, "input_var")
        if self.gram_factor is not None:
            self.gram_factor = as_tensor(self.gram_factor, "gram_factor")
        self.metadata = {str(k): str(v) for k, v in (self.metadata or {}).items()}
        if self.validate:
            self.check()

    # ------------------------------------------------------------------ shape
    @property
    def d_out(self) -> int:
        return self.weight.shape[0]

    @property
    def d_in(self) -> int:
        return self.weight.shape[1]

    @property
    def pruned_per_row(self) -> int:
        return self.pattern.pruned_per_row(self.d_in)

    @property
    def sparsity(self) -> float:
        return self.pruned_per_row / self.d_in if self.d_in else 0.0

    # ------------------------------------------------------------- validation
    def check(self, check_psd: bool = True) -> None:
        """Raise :class:`ProblemError` / :class:`PatternError` naming what is wrong."""
        w, g = self.weight, self.gram
        if w.ndim != 2:
            raise ProblemError(f"weight must be 2-D [d_out, d_in], got shape {tuple(w.shape)}")
        if g.ndim != 2 or g.shape[0] != g.shape[1]:
            raise ProblemError(f"gram must be square [d_in, d_in], got shape {tuple(g.shape)}")
        if g.shape[0] != w.shape[1]:
            raise ProblemError(
                f"gram is {tuple(g.shape)} but weight has d_in={w.shape[1]}; they must agree")
        if w.shape[0] == 0 or w.shape[1] == 0:
            raise ProblemError(f"weight has an empty dimension: shape {tuple(w.shape)}")
        for name, t in (("weight", w), ("gram", g)):
            if not torch.isfinite(t).all():
                bad = int((~torch.isfinite(t)).sum())
                raise ProblemError(f"{name} contains {bad} non-finite values (NaN or inf)")
        for name, t in (("input_mean", self.input_mean), ("input_var", self.input_var)):
            if t is None:
                continue
            if t.shape != (self.d_in,):
                raise ProblemError(f"{name} must have shape [d_in={self.d_in}], got {tuple(t.shape)}")
            if not torch.isfinite(t).all():
                raise ProblemError(f"{name} contains non-finite values")
        if self.input_var is not None and (self.input_var < 0).any():
            raise ProblemError("input_var has negative entries")
        self.pattern.validate(self.d_in)
        self._check_gram(check_psd)
        self._check_scale()
        self._check_factor()

    def _check_factor(self) -> None:
        """Refuse a ``gram_factor`` X that is not a factor of G: ``‖X v‖² = vᵀ G v`` on 4 probes.

        The probes are fixed Gaussian vectors (seed 0); cost ``4·(tokens + d_in)·d_in``. The
        tolerance is relative to ``vᵀ diag(G) v``-scale values so that float32 inputs pass.
        """
        x = self.gram_factor
        if x is None:
            return
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ProblemError(f"gram_factor must have shape [tokens, d_in={self.d_in}], got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ProblemError("gram_factor contains non-finite values")
        probes = torch.randn(self.d_in, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        g = self.gram.to(torch.float64)
        via_gram = (probes * (g @ probes)).sum(0)
        via_factor = (x.to(torch.float64) @ probes).square().sum(0)
        scale = float(torch.diagonal(g).sum()) + 1e-300
        err = float((via_gram - via_factor).abs().max()) / scale
        if err > FACTOR_RTOL:
            raise ProblemError(f"gram_factor X does not satisfy G = XᵀX: probe error {err:.3g} × trace(G) "
                               f"exceeds {FACTOR_RTOL:g}")

    def _check_scale(self) -> None:
        """Refuse data whose loss terms ``W_ij W_ik G_jk`` leave float64's normal range.

        The objective's largest terms are of order ``s = max|W|² · max G_jj``. Below about 1e-290
        they underflow to 0 and every mask looks optimal with objective 0; above about 1e290 they
        overflow. The mask choice is invariant to scaling W or G, so the fix is a rescale.
        """
        w_max = float(self.weight.abs().max())
        g_max = float(torch.diagonal(self.gram).max())
        if w_max == 0.0 or g_max <= 0.0:
            return
        log_scale = 2.0 * math.log10(w_max) + math.log10(g_max)
        if not SCALE_LOG10_RANGE[0] <= log_scale <= SCALE_LOG10_RANGE[1]:
            raise ProblemError(
                f"values out of float64 range for the objective: max|W|² · max G_jj ≈ 1e{log_scale:.0f} is outside "
                f"[1e{SCALE_LOG10_RANGE[0]}, 1e{SCALE_LOG10_RANGE[1]}]; rescale W or G (masks do not depend on scale)")

    def _check_gram(self, check_psd: bool) -> None:
        g = self.gram
        scale = float(g.abs().max())
        asym = 0.0  # in row blocks: no d_in × d_in temporary (two of them were 1.9 GB at d_in = 11008)
        for r0 in range(0, g.shape[0], 1024):
            asym = max(asym, float((g[r0:r0 + 1024] - g[:, r0:r0 + 1024].T).abs().max()))
        if asym > SYMMETRY_RTOL * max(scale, 1e-300):
            raise ProblemError(
                f"gram is not symmetric: max |G - Gᵀ| = {asym:.3g} exceeds "
                f"{SYMMETRY_RTOL:g} × max |G| = {SYMMETRY_RTOL * scale:.3g}")
        diag = torch.diagonal(g)
        if (diag < 0).any():
            j = int(torch.argmin(diag))
            raise ProblemError(f"gram is not positive semidefinite: G[{j},{j}] = {float(diag[j]):.3g} < 0")
        if not check_psd or scale == 0.0:
            return
        tol = PSD_TOL.get(g.dtype, 1e-4)
        g64 = g.to(torch.float64)
        g64 = 0.5 * (g64 + g64.T)
        shift = tol * float(diag.to(torch.float64).mean())
        _, info = torch.linalg.cholesky_ex(g64 + shift * torch.eye(self.d_in, dtype=torch.float64))
        if int(info) != 0:
            lam_min = float(torch.linalg.eigvalsh(g64)[0])
            raise ProblemError(
                f"gram is not positive semidefinite: smallest eigenvalue {lam_min:.3g} is below "
                f"-{tol:g} × mean(diag G) = {-shift:.3g}")

    # ---------------------------------------------------------------- identity
    def instance_id(self) -> str:
        """Content hash (sha256, 16 hex digits) of weight, gram and pattern.

        Provenance metadata and optional statistics do not enter the id, so the
        same numbers under different labels are recognised as the same instance.
        """
        h = hashlib.sha256()
        for t in (self.weight, self.gram):
            arr = t.detach().cpu().contiguous().numpy()
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        h.update(repr(sorted(self.pattern.to_metadata().items())).encode())
        return h.hexdigest()[:16]

    def with_pattern(self, pattern: Pattern) -> MaskProblem:
        """The same layer under another sparsity pattern."""
        pattern.validate(self.d_in)
        return MaskProblem(self.weight, self.gram, pattern, self.input_mean, self.input_var,
                           dict(self.metadata), validate=False, gram_factor=self.gram_factor)

    def crop(self, rows, cols, pattern: Pattern | None = None) -> MaskProblem:
        """Sub-problem on the given rows and input columns (with the matching Gram block)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        cols = torch.as_tensor(cols, dtype=torch.long)
        sub = lambda t: None if t is None else t[cols].clone()
        return MaskProblem(self.weight[rows][:, cols].clone(), self.gram[cols][:, cols].clone(),
                           pattern if pattern is not None else self.pattern,
                           sub(self.input_mean), sub(self.input_var), dict(self.metadata),
                           gram_factor=None if self.gram_factor is None else self.gram_factor[:, cols].clone())

    @classmethod
    def from_activations(cls, weight, activations, pattern: Pattern, **kwargs) -> MaskProblem:
        """Build from calibration inputs ``X`` [tokens, d_in]; G accumulated in float64."""
        acc = GramAccumulator(as_tensor(activations, "activations").shape[-1])
        acc.update(activations)
        return acc.problem(weight, pattern, **kwargs)


class GramAccumulator:
    """Streaming ``G = Σ_t x_t x_tᵀ`` plus per-input mean and variance, in float64.

    ``update`` takes any tensor whose last dimension is ``d_in`` (e.g. a batch of
    hidden states ``[batch, seq, d_in]``); leading dimensions are flattened into
    tokens. Memory: one ``d_in × d_in`` float64 matrix and one ``d_in`` vector, plus the tokens
    themselves (in their own dtype) while ``tokens ≤ FACTOR_MAX_FRACTION·d_in`` — at most a quarter
    of ``G``'s bytes for float32 inputs — handed to the problem as ``gram_factor`` so that masks are
    verified through them (:mod:`solvers.objective`); dropped for good once more tokens arrive.

    **Only the upper triangle is accumulated.** ``G`` is symmetric, so each chunk adds
    ``X_iᵀ X_{i:}`` for ``TRIANGLE_BLOCKS`` column blocks ``i`` (≈ 5/8 of a full product's
    flops; on 2 CPU cores 0.26 s instead of 0.45 s per Llama block of 4 096 tokens), and
    :attr:`gram` mirrors it once when read. ``Σ x_j²`` is the accumulated diagonal, and a
    non-finite activation makes that diagonal non-finite, so no separate pass over the chunk
    checks or squares it (after that error the accumulator is spent).
    """

    TRIANGLE_BLOCKS = 4
    """Column blocks of the upper-triangle product (measured best of 2–12 for d_in = 576 and 1 536)."""

    def __init__(self, d_in: int, device: torch.device | str | None = None, chunk_tokens: int = 8192):
        self.d_in = d_in
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.chunk_tokens = chunk_tokens
        self.upper = torch.zeros(d_in, d_in, dtype=torch.float64, device=self.device)
        self.sum = torch.zeros(d_in, dtype=torch.float64, device=self.device)
        self.tokens = 0
        self.kept: list[torch.Tensor] | None = []  # the raw tokens while few; None once too many

    def update(self, x) -> None:
        x = as_tensor(x, "activations") if not isinstance(x, torch.Tensor) else x
        if x.shape[-1] != self.d_in:
            raise ProblemError(f"activations have last dimension {x.shape[-1]}, expected d_in={self.d_in}")
        x = x.detach().reshape(-1, self.d_in)
        width = -(-self.d_in // self.TRIANGLE_BLOCKS)
        for start in range(0, x.shape[0], self.chunk_tokens):
            xc = x[start:start + self.chunk_tokens].to(self.device, torch.float64)
            for i in range(0, self.d_in, width):
                self.upper[i:i + width, i:].addmm_(xc[:, i:i + width].T, xc[:, i:])
            if not torch.isfinite(torch.diagonal(self.upper)).all():
                raise ProblemError("activations contain non-finite values")
            self.sum += xc.sum(0)
            self.tokens += xc.shape[0]
            self._keep(x[start:start + self.chunk_tokens])

    def _keep(self, x: torch.Tensor) -> None:
        if self.kept is None:
            return
        if self.tokens > FACTOR_MAX_FRACTION * self.d_in:
            self.kept = None
            return
        self.kept.append(x.to(self.device).clone())

    def copy_from(self, other: GramAccumulator) -> None:
        """Take ``other``'s state (same ``d_in``): the result of the same updates, bit for bit."""
        self.upper.copy_(other.upper)
        self.sum.copy_(other.sum)
        self.tokens = other.tokens
        self.kept = None if other.kept is None else list(other.kept)  # the same immutable chunks, shared

    @property
    def gram(self) -> torch.Tensor:
        """The full symmetric ``G`` (a new tensor), its lower triangle mirrored from the upper."""
        g = self.upper.triu()
        for r0 in range(0, self.d_in, 1024):  # mirror in row blocks: no second d_in × d_in temporary
            r1 = min(r0 + 1024, self.d_in)
            g[r0:r1, :r0] = self.upper[:r0, r0:r1].T
            g[r0:r1, r0:r1] += self.upper[r0:r1, r0:r1].triu(1).T
        return g

    @property
    def mean(self) -> torch.Tensor:
        return self.sum / max(self.tokens, 1)

    @property
    def var(self) -> torch.Tensor:
        """Population variance ``E[x²] − E[x]²`` (clamped at 0 against rounding)."""
        m = self.mean
        return (torch.diagonal(self.upper) / max(self.tokens, 1) - m * m).clamp_min(0.0)

    def token_factor(self) -> torch.Tensor | None:
        """The kept tokens as ``X`` [tokens, d_in] on the CPU (``G = XᵀX``), float16 / bfloat16 cast to
        float32 (exact); ``None`` once too many tokens arrived."""
        factor = torch.cat(self.kept).cpu() if self.kept else None
        if factor is not None and factor.dtype not in (torch.float32, torch.float64):
            factor = factor.to(torch.float32)
        return factor

    def problem(self, weight, pattern: Pattern, metadata: dict | None = None, **kwargs) -> MaskProblem:
        if self.tokens == 0:
            raise ProblemError("GramAccumulator saw no tokens")
        g = self.gram.cpu()
        meta = dict(metadata or {})
        meta.setdefault("tokens", str(self.tokens))
        validate = kwargs.pop("validate", True)
        factor = self.token_factor()
        problem = MaskProblem(as_tensor(weight, "weight"), g, pattern, self.mean.cpu(), self.var.cpu(),
                              meta, validate=False, gram_factor=factor, **kwargs)
        if validate:
            # every check but the Cholesky test of positive semidefiniteness: G = Σ x xᵀ is PSD by
            # construction, and the test cost ~0.1 s per 1536-wide layer of a whole-model prune
            problem.check(check_psd=False)
        return problem
