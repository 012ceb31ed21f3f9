"""bench.studies.verify_speed on a tiny shape: every form gives the same values (no timing asserted)."""

from __future__ import annotations

from bench.studies import verify_speed


def test_forms_agree_and_the_table_prints(capsys):
    r = verify_speed.run_shape("24x64", tokens=16, reps=1)
    assert r["rel_sym"] < 1e-12 and r["rel_tokens"] < 1e-12          # 16 <= 64/2: the token form is used
    assert verify_speed.main(["--shapes", "24x64,8x32", "--tokens", "40", "--reps", "1"]) == 0
    out = capsys.readouterr().out
    assert "24x64" in out and "8x32" in out                           # 40 > 32/2: no token form for 8x32
