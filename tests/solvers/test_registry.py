"""The solver registry (solvers.registry): availability, warm starts, the chain syntax, recorded settings."""

import pytest
import torch

from solvers import (
    InfeasibleMaskError,
    SolverUnavailableError,
    UnknownSolverError,
    available_solvers,
    get_solver,
    register_solver,
    solve,
)
from solvers.registration import SOLVERS
from solvers.registry import chain_name, format_chain, parse_chain, prepare, resolve_warm_start, split_chain
from solvers.result import make_result
from solvers.synthetic import generate


def test_builtin_baselines_registered_and_available():
    infos = {i.name: i for i in available_solvers()}
    for name in ("magnitude", "wanda", "ria", "sparsegpt"):
        assert infos[name].available and infos[name].kind == "baseline"


def test_unknown_solver_lists_available():
    with pytest.raises(UnknownSolverError, match="unknown solver 'nope'.*wanda"):
        solve("nope", generate(family="tiny"))


@pytest.fixture
def fake_solvers():
    @register_solver("fake-missing", "exact", "needs a missing module", requires=("no_such_module_xyz",),
                     extra="fakeextra")
    def _missing(problem, warm_start, time_limit, seed):
        raise AssertionError("must not run")

    @register_solver("fake-refiner", "refiner", "returns its warm start", uses_warm_start=True,
                     default_warm_start=("no-such+wanda", "magnitude"))
    def _refiner(problem, warm_start, time_limit, seed, bump: int = 0):
        return make_result(problem, warm_start.mask, "fake-refiner", settings={"bump": bump})

    yield
    SOLVERS.pop("fake-missing")
    SOLVERS.pop("fake-refiner")


def test_unavailable_solver_names_the_extra(fake_solvers):
    info = {i.name: i for i in available_solvers()}["fake-missing"]
    assert not info.available and ".[fakeextra]" in info.reason
    with pytest.raises(SolverUnavailableError, match=r"\.\[fakeextra\]"):
        get_solver("fake-missing")


def test_warm_start_resolution(fake_solvers):
    p = generate(family="tiny", seed=3)
    default = solve("fake-refiner", p)
    assert default.warm_start == "magnitude"  # first available default
    chained = solve("wanda+fake-refiner", p, bump=2)
    assert chained.warm_start == "wanda" and chained.settings["bump"] == 2
    assert torch.equal(chained.mask, solve("wanda", p).mask)
    assert chained.warm_start_objective == pytest.approx(solve("wanda", p).objective)
    from_mask = solve("fake-refiner", p, warm_start=chained.mask)
    assert from_mask.warm_start == "mask"
    from_result = resolve_warm_start(p, chained)
    assert from_result.label == "wanda+fake-refiner"  # a result of a chain is labelled by its chain
    bad = torch.ones(p.d_out, p.d_in, dtype=torch.bool)
    with pytest.raises(InfeasibleMaskError, match="warm start refused"):
        solve("fake-refiner", p, warm_start=bad)


def test_results_record_settings_versions_and_timing():
    r = get_solver("sparsegpt")(generate(family="tiny", seed=0), seed=7, blocksize=4)
    assert r.settings["seed"] == 7 and r.settings["blocksize"] == 4
    assert "torch" in r.versions and r.solve_seconds > 0
    with pytest.raises(ValueError, match="time_limit"):
        solve("wanda", generate(family="tiny"), time_limit=-1)


@pytest.mark.parametrize("name, parts", [
    ("wanda", ("wanda",)),
    ("wanda+swap", ("wanda", "swap")),
    ("magnitude+swap+dsnot", ("magnitude", "swap", "dsnot")),
])
def test_parse_and_format_chain_round_trip(name, parts):
    assert parse_chain(name) == parts
    assert format_chain(parts) == name
    assert format_chain(parse_chain(name)) == name


def test_parse_chain_strips_whitespace_around_links():
    assert parse_chain(" wanda + swap ") == ("wanda", "swap")
    assert format_chain(parse_chain("wanda +swap+ dsnot")) == "wanda+swap+dsnot"


@pytest.mark.parametrize("name", ["wanda++swap", "", "+swap", "wanda+", " + "])
def test_malformed_chains_are_refused(name):
    with pytest.raises(ValueError, match="malformed solver name or chain"):
        parse_chain(name)
    with pytest.raises(ValueError, match="malformed solver name or chain"):
        solve(name, generate(family="tiny", seed=0))


def test_chain_name_and_split_chain_are_inverse():
    assert chain_name("swap", None) == "swap"
    assert chain_name("swap", "wanda") == "wanda+swap"
    assert chain_name("swap", "wanda+swap") == "wanda+swap+swap"
    assert split_chain("wanda") == ("wanda", None)
    assert split_chain("wanda+swap+dsnot") == ("dsnot", "wanda+swap")
    for name in ("wanda", "wanda+swap", "wanda+swap+swap", "magnitude+swap+dsnot"):
        assert chain_name(*split_chain(name)) == name


def test_solver_names_cannot_contain_the_chain_separator():
    with pytest.raises(ValueError, match="free of"):
        register_solver("wanda+x", "baseline", "a chain is not a name")


def test_a_repeated_solver_in_a_warm_start_chain_keeps_its_full_label():
    """Each link is labelled by its position: ``"wanda+swap+swap"`` is not cut back to ``"wanda+swap"``."""
    p = generate(family="small", d_in=32, d_out=4, seed=1)
    ws = resolve_warm_start(p, "wanda+swap+swap")
    assert ws.label == "wanda+swap+swap"
    refined = solve("swap", p, warm_start="wanda+swap+swap")
    assert refined.warm_start == "wanda+swap+swap"
    assert refined.warm_start_objective == pytest.approx(solve("wanda+swap+swap", p).objective, rel=1e-12)
    assert solve("wanda+swap+swap", p).warm_start == "wanda+swap"


def test_warm_starts_carry_their_row_objectives_on_this_problem():
    from solvers.objective import row_objectives
    from solvers.registration import WarmStart
    from solvers.registry import resolve_warm_start

    a = generate(family="small", d_in=32, d_out=6, seed=1)
    b = generate(family="small", d_in=32, d_out=6, seed=2)  # same shape, other numbers
    for start in ("wanda", "wanda+swap", solve("wanda", a), solve("wanda", a).mask):
        ws = resolve_warm_start(b, start)
        torch.testing.assert_close(ws.row_objectives, row_objectives(b, ws.mask), rtol=0, atol=0)
        assert ws.objective == float(ws.row_objectives.sum())
    # a start built by hand without them still refines (evaluated on demand)
    bare = WarmStart(solve("wanda", b).mask, "by hand", solve("wanda", b).objective)
    assert solve("swap", b, warm_start=bare).objective == solve("swap", b, warm_start="wanda").objective


def test_prepare_runs_the_set_up_of_every_available_solver_of_a_chain():
    calls = []

    @register_solver("fake-prepared", "refiner", "has a set-up", uses_warm_start=True,
                     prepare=lambda: calls.append("prepared"))
    def _prepared(problem, warm_start, time_limit, seed):
        raise AssertionError("must not run")

    @register_solver("fake-prepared-missing", "exact", "unavailable", requires=("no_such_module_xyz",),
                     prepare=lambda: calls.append("missing"))
    def _missing(problem, warm_start, time_limit, seed):
        raise AssertionError("must not run")

    try:
        prepare("wanda+fake-prepared+fake-prepared")
        prepare("fake-prepared-missing")
        assert calls == ["prepared", "prepared"]
        with pytest.raises(UnknownSolverError):
            prepare("wanda+nope")
    finally:
        SOLVERS.pop("fake-prepared")
        SOLVERS.pop("fake-prepared-missing")
    from solvers.refiners.cpu_kernels import load
    assert SOLVERS["swap"].prepare is load and SOLVERS["lns"].prepare is load
