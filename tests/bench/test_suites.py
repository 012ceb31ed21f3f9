"""Suites fail loudly when they load: each case is a defect that once gave 0 tasks, a traceback or a late failure."""

import pytest

from bench.errors import SuiteError
from bench.runner import build_tasks
from bench.store import ResultStore
from bench.suites import load_suite

GENERATED = '[[instances]]\nkind = "generated"\nfamily = "tiny"\nd_in = 12\nd_out = 2\n'
WANDA = '[[solvers]]\nname = "wanda"\n'


def _suite(tmp_path, text: str, name: str = "s"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def test_scalar_families_is_a_one_element_list(tmp_path):
    suite = load_suite(_suite(tmp_path, GENERATED + WANDA + 'families = "tiny"\n'))
    assert suite.solvers[0].families == ("tiny",)
    assert len(build_tasks(suite, tmp_path / "cache", log=lambda m: None)) == 1


@pytest.mark.parametrize("text, message", [
    (GENERATED, r"\[\[instances\]\] without any \[\[solvers\]\]"),
    (WANDA, r"a suite needs \[\[instances\]\]"),
    (GENERATED.replace("d_in = 12", "dead_fraction = 1.5") + WANDA,
     r"instances\[0\]\.dead_fraction must be a number in \[0, 1\), got 1\.5"),
    (GENERATED.replace("d_in = 12", 'd_in = "abc"') + WANDA, r"instances\[0\]\.d_in must be an integer ≥ 1, got 'abc'"),
    (GENERATED.replace("d_in = 12", "d_in = [12, true]") + WANDA, r"instances\[0\]\.d_in\[1\] must be an integer"),
    (GENERATED.replace("d_in = 12", "d_in = 99") + WANDA, r"family 'tiny' needs d_in in \[2, 20\], got 99"),
    (GENERATED.replace('"tiny"', '"huge"') + WANDA, r"unknown family 'huge'"),
    (GENERATED + 'sparsity = 1.0\n' + WANDA, r"sparsity must be a number in \(0, 1\)"),
    (GENERATED + 'pattern = "3-4"\n' + WANDA, r"unknown pattern '3-4'"),
    (GENERATED + WANDA + 'max_d_in = "abc"\n', r"solvers\[0\]\.max_d_in must be an integer ≥ 1, got 'abc'"),
    ('instances = "abc"\n' + WANDA, r"instances must be an array of tables"),
    (GENERATED + WANDA + "time_limit = 0\n", r"solvers\[0\]\.time_limit must be a positive number of seconds, got 0"),
    (GENERATED + WANDA + "time_limit = nan\n", r"time_limit must be a positive number"),
    (GENERATED + '[[solvers]]\nname = "swap"\nsettings = { max_iter = 100 }\n',
     r"unknown setting 'max_iter' for solver 'swap' \(did you mean 'max_iters'\?\)"),
    (GENERATED + '[[solvers]]\nname = "swap"\nsettings = { max_iters = "abc" }\n',
     r"'max_iters' of solver 'swap' must be an integer"),
    (GENERATED + '[[solvers]]\nname = "wandaa"\n', r"unknown solver 'wandaa' \(did you mean 'wanda'\?\)"),
    (GENERATED + '[[solvers]]\nname = "swap"\nwarm_start = "wanda+magnitud"\n', r"unknown solver 'magnitud'"),
    (GENERATED + '[[solvers]]\nname = "wanda"\nwarm_start = "magnitude"\n', r"'wanda' \(baseline\) does not take a warm start"),
    (GENERATED + '[[solvers]]\nname = "swap"\nwarm_start = "wanda+magnitude"\n',
     r"solver 'magnitude' \(baseline\) does not take a warm start, so it cannot follow '\+'"),
    (GENERATED + '[[solvers]]\nname = "wanda+swap"\nwarm_start = "magnitude"\n',
     r"name 'wanda\+swap' is already a chain with its warm start"),
    (GENERATED + WANDA + "colour = 1\n", r"solvers\[0\] has unknown keys \['colour'\]"),
    (GENERATED + "seed = 3\n" + WANDA, r"instances\[0\] has unknown keys \['seed'\]"),
    ('name = "x/../../escaped"\n' + GENERATED + WANDA, r"name 'x/../../escaped' may only hold letters"),
    ('name = ".."\n' + GENERATED + WANDA, r"may only hold letters"),
    ('[[instances]]\nkind = "model"\nmodel = "no/such/model"\nlayers = "*"\n' + WANDA,
     r"instances\[0\]\.model: model 'no/such/model': no such local directory.*optional = true"),
    ('[[prune]]\nsolver = "wanda"\nmodel = "no/such/model"\n', r"prune\[0\]\.model: model 'no/such/model'"),
    ('[[prune]]\nsolver = "wanda"\nsettings = { blocksize = 8 }\n', r"prune\[0\]\.settings: unknown setting 'blocksize'"),
    ('[[prune]]\nsolver = "wanda"\nnsamples = "many"\n', r"prune\[0\]\.nsamples must be an integer ≥ 1"),
    ("[[instances]\n", r"invalid TOML"),
])
def test_malformed_suites_fail_at_load_with_one_line(tmp_path, text, message):
    with pytest.raises(SuiteError, match=message) as info:
        load_suite(_suite(tmp_path, text))
    assert "\n" not in str(info.value)


def test_a_directory_as_the_suite_is_a_one_line_error(tmp_path):
    with pytest.raises(SuiteError, match="is a directory"):
        load_suite(str(tmp_path))


def test_model_source_is_required_unless_marked_optional(tmp_path):
    missing = '[[instances]]\nkind = "model"\nmodel = "no/such/model"\nlayers = "*"\n'
    with pytest.raises(SuiteError, match="no such local directory"):
        load_suite(_suite(tmp_path, missing + WANDA))  # optional defaults to false
    suite = load_suite(_suite(tmp_path, missing + "optional = true\n" + WANDA))
    messages = []
    with pytest.raises(SuiteError, match="has no tasks: its instance sources yielded no instance"):
        build_tasks(suite, tmp_path / "cache", log=messages.append)
    assert any(m.startswith("skipping model instances (no/such/model)") for m in messages)


def test_zero_tasks_names_why(tmp_path):
    suite = load_suite(_suite(tmp_path, GENERATED + WANDA + "max_d_in = 8\n"))
    messages = []
    with pytest.raises(SuiteError, match="has no tasks: no solver configuration applies to any instance"):
        build_tasks(suite, tmp_path / "cache", log=messages.append)
    assert messages == ["solver configuration 'wanda' applies to no instance of the suite (max_d_in=8, families=[])"]


def test_settings_are_validated_but_keys_keep_their_values(tmp_path):
    # an int for a float setting is accepted (and converted by the solver), but the configuration key —
    # which matches results across runs and baselines — hashes the value as written
    suite = load_suite(_suite(tmp_path, GENERATED + '[[solvers]]\nname = "swap"\ntime_limit = 30\n'
                                                    'settings = { max_iters = 10 }\n'))
    cfg = suite.solvers[0]
    assert cfg.time_limit == 30 and isinstance(cfg.time_limit, int) and cfg.settings == {"max_iters": 10}


@pytest.mark.parametrize("text, message", [
    (GENERATED.replace("d_in = 12", 'd_in = "abc"') + WANDA, "instances[0].d_in must be an integer"),
    (GENERATED + WANDA + "max_d_in = 4\n", "suite 's' has no tasks: no solver configuration applies"),
    (None, "is a directory"),
])
def test_run_reports_suite_mistakes_in_one_line_and_stores_nothing(tmp_path, capsys, text, message):
    from bench.cli import main

    suite = _suite(tmp_path, text) if text is not None else str(tmp_path)
    store = tmp_path / "out" / "s.sqlite"
    assert main(["run", suite, "--store", str(store), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("maskbench: error: ") and message in err[-1]
    assert not store.exists() or ResultStore(store).runs() == []
