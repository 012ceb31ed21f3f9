"""Exported CSV baselines: written by ``maskbench export``, read back as a compare source."""

import pytest

from bench.compare import compare
from bench.export import load_source


@pytest.mark.slow
def test_exported_csv_baseline_round_trip(two_runs, cli, tmp_path):
    tmp, store, r1, r2 = two_runs
    csv = tmp_path / "baseline.csv"
    assert cli("export", str(r1), "--store", store.path, "--csv", csv).returncode == 0
    frame, info = load_source(str(csv))
    assert len(frame) == 8 and info["suite"] == "t"
    proc = cli("compare", csv, store.path)  # latest run of the store
    assert proc.returncode == 0 and "**OK**" in proc.stdout
    base, base_info = load_source(str(csv))
    new, new_info = load_source(f"{store.path}:{r2}")
    new.loc[new.index[0], "objective"] *= 2
    assert compare(base, new, base_info, new_info).failed
