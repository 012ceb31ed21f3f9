"""maskbench solvers: the mask-selection problem, its float64 objective, and every solver.

Nothing here imports ``models``, ``bench`` or ``reports``.
"""

from solvers.errors import (
    InfeasibleMaskError,
    InstanceFileError,
    MaskbenchError,
    PatternError,
    ProblemError,
    SolverUnavailableError,
    UnknownSolverError,
)
from solvers.instance_io import load_instance, load_mask, save_instance, save_mask
from solvers.objective import check_feasible, evaluate, objective, row_objectives
from solvers.pattern import NM, Pattern, PerRow, parse_pattern
from solvers.problem import GramAccumulator, MaskProblem
from solvers.registration import WarmStart, register_solver
from solvers.registry import available_solvers, get_solver, solve
from solvers.result import SolveResult, make_result
from solvers.synthetic import SyntheticSpec, generate

__all__ = [
    "NM", "GramAccumulator", "InfeasibleMaskError", "InstanceFileError", "MaskProblem", "MaskbenchError", "Pattern",
    "PatternError", "PerRow", "ProblemError", "SolveResult", "SolverUnavailableError", "SyntheticSpec",
    "UnknownSolverError", "WarmStart", "available_solvers", "check_feasible", "evaluate", "generate",
    "get_solver", "load_instance", "load_mask", "make_result", "objective", "parse_pattern",
    "register_solver", "row_objectives", "save_instance", "save_mask", "solve",
]
