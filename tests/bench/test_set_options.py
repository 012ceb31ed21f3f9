"""``--set KEY=VALUE``: JSON values, plain strings otherwise, one-line errors for malformed items."""

import pytest

from bench.set_options import parse_set_options


def test_values_are_json_or_plain_strings():
    assert parse_set_options(["max_iters=100", "tol=1e-6", "verbose=true", "method=ipm", "cols=[1, 2]",
                              "expr=a=b"]) == {"max_iters": 100, "tol": 1e-6, "verbose": True, "method": "ipm",
                                               "cols": [1, 2], "expr": "a=b"}
    assert parse_set_options([]) == {}


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_malformed_items_are_refused(item):
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_set_options([item])
