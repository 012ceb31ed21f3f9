"""Issue 34, part 1: outputs never replace links, FIFOs, devices or inputs; folders are checked first.

``/dev/stdout`` itself is never touched: a symlink in ``tmp_path`` to a FIFO stands for it (the
real one is a link to ``/proc/self/fd/1``, a pipe or terminal).
"""

from __future__ import annotations

import os

import pytest

from tests.safety.helpers import assert_one_line_error, call, snapshot


def _fifo(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "stdout-like"
    link.symlink_to(fifo)
    return fifo, link


def test_export_csv_through_a_symlink_keeps_the_link(store, tmp_path, capsys):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    code, _, err = call(capsys, "export", "--store", store, "--csv", link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith("id,") or "instance_id" in real.read_text().splitlines()[0]


def test_export_csv_to_a_fifo_or_a_link_to_one_is_refused(store, tmp_path, capsys):
    fifo, link = _fifo(tmp_path)
    before = snapshot(fifo, link, store)
    for target in (fifo, link):
        code, _, err = call(capsys, "export", "--store", store, "--csv", target)
        assert_one_line_error(code, err, "FIFO", "'-'")
    assert snapshot(fifo, link, store) == before


def test_export_csv_dash_writes_standard_output(store, capsys):
    code, out, err = call(capsys, "export", "--store", store, "--csv", "-")
    assert code == 0, err
    assert out.splitlines()[0].split(",")[:1] and "instance_id" in out.splitlines()[0]
    assert "standard output" in err


def test_compare_out_to_link_and_fifo(store, tmp_path, capsys):
    real = tmp_path / "cmp.md"
    real.write_text("x")
    link = tmp_path / "cmp-link.md"
    link.symlink_to(real)
    code, _, err = call(capsys, "compare", store, store, "--out", link)
    assert code == 0, err
    assert link.is_symlink() and "regression" in real.read_text().lower()
    fifo, flink = _fifo(tmp_path)
    code, _, err = call(capsys, "compare", store, store, "--out", flink)
    assert_one_line_error(code, err, "FIFO")
    assert fifo.is_fifo() and flink.is_symlink()


def test_solve_out_to_link_and_fifo(instance, tmp_path, capsys):
    real = tmp_path / "m.safetensors"
    real.write_bytes(b"old")
    link = tmp_path / "mask-link.safetensors"
    link.symlink_to(real)
    code, _, err = call(capsys, "solve", instance, "--solver", "wanda", "--out", link)
    assert code == 0, err
    assert link.is_symlink() and real.stat().st_size > 3
    fifo, flink = _fifo(tmp_path)
    code, _, err = call(capsys, "solve", instance, "--solver", "wanda", "--out", flink)
    assert_one_line_error(code, err, "FIFO")
    assert fifo.is_fifo()


@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_report_out_never_overwrites_the_store(store, tmp_path, capsys, how):
    out = tmp_path / "rep"
    out.mkdir()
    for name in ("report.md", "table_gap.tex"):
        entry = out / name
        entry.symlink_to(store) if how == "symlink" else os.link(store, entry)
        before = snapshot(store)
        code, _, err = call(capsys, "report", "--store", store, "--out", out)
        assert_one_line_error(code, err, "refusing to overwrite")
        assert snapshot(store) == before
        entry.unlink()


def test_history_out_never_overwrites_the_store(store, tmp_path, capsys):
    out = tmp_path / "hist"
    out.mkdir()
    (out / "history.csv").symlink_to(store)
    before = snapshot(store)
    code, _, err = call(capsys, "history", "--store", store, "--out", out)
    assert_one_line_error(code, err, "refusing to overwrite")
    assert snapshot(store) == before


def test_report_out_a_file_is_refused(store, tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    code, _, err = call(capsys, "report", "--store", store, "--out", blocker)
    assert_one_line_error(code, err, "is a file")
    assert blocker.read_text() == "mine"


def test_run_checks_the_report_folder_before_running(tmp_path, capsys):
    from tests.bench.conftest import _write_suite as write_suite
    blocker = tmp_path / "afile"
    blocker.write_text("mine")
    suite = write_suite(tmp_path)
    store = tmp_path / "new.sqlite"
    code, _, err = call(capsys, "run", suite, "--store", store, "--workers", "1", "--report-dir", blocker / "r")
    assert_one_line_error(code, err, "cannot write here")
    assert not store.exists()  # refused before the store (and an interrupted run) was created


def test_prune_save_refusals_come_before_loading(tiny_llama_dir, tmp_path, capsys):
    before = snapshot(tiny_llama_dir, *sorted(tiny_llama_dir.iterdir()))
    code, _, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--save", tiny_llama_dir)
    assert_one_line_error(code, err, "refusing to write into the input")
    code, _, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--save", tiny_llama_dir / "sub")
    assert_one_line_error(code, err, "refusing to write into the input")
    existing = tmp_path / "existing-file"
    existing.write_text("mine")
    code, _, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--save", existing)
    assert_one_line_error(code, err, "is a file")
    assert existing.read_text() == "mine"
    code, out, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--save", existing / "under")
    assert_one_line_error(code, err, "cannot write here")
    assert "perplexity" not in out  # nothing was loaded or evaluated
    assert snapshot(tiny_llama_dir, *sorted(tiny_llama_dir.iterdir())) == before


def test_prune_save_writes_through_a_folder_atomically(tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    code, stdout, err = call(capsys, "prune", tiny_llama_dir, "--solver", "magnitude", "--nsamples", "2", "--seqlen",
                             "16", "--save", out, "--no-progress")
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert "config.json" in names and any(n.endswith(".safetensors") for n in names)
    assert not any(n.startswith(".maskbench-save") for n in names)


def test_a_link_to_dev_stdout_is_refused_and_left_alone(store, tmp_path, capsys):
    """Through a link in tmp_path (the real /dev/stdout is only read, never given as output): with
    stdout redirected to a file, /dev/stdout resolves to that file, which a write would replace."""
    link = tmp_path / "out.csv"
    link.symlink_to("/dev/stdout")
    code, _, err = call(capsys, "export", "--store", store, "--csv", link)
    assert_one_line_error(code, err, "/dev/stdout", "'-'")
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"
    assert os.path.islink("/dev/stdout")
