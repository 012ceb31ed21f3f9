"""Issue 34, part 5: compare refuses when no matched pair has finite objectives on both sides."""

from __future__ import annotations

import pandas as pd

from tests.safety.helpers import assert_one_line_error, call


def test_all_nan_baseline_is_refused(store, tmp_path, capsys):
    csv = tmp_path / "base.csv"
    assert call(capsys, "export", "--store", store, "--csv", csv)[0] == 0
    frame = pd.read_csv(csv, dtype=str)
    frame["objective"] = "nan"
    frame.to_csv(csv, index=False)
    code, out, err = call(capsys, "compare", csv, store)
    assert_one_line_error(code, err, "finite objective")
    assert "OK" not in out


def test_one_finite_pair_is_enough(store, tmp_path, capsys):
    csv = tmp_path / "base.csv"
    assert call(capsys, "export", "--store", store, "--csv", csv)[0] == 0
    frame = pd.read_csv(csv, dtype=str)
    frame.loc[frame.index[1:], "objective"] = "nan"
    frame.to_csv(csv, index=False)
    code, _, err = call(capsys, "compare", csv, store)
    assert code in (0, 1), err
