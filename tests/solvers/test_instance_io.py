"""Instance and mask files (solvers.instance_io): bit-exact round trips, clean failures."""

import pytest
import torch
from safetensors.torch import save_file

from solvers import InstanceFileError, load_instance, load_mask, save_instance, save_mask, solve
from solvers.synthetic import generate


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pattern", ["per-row", "2:4"])
def test_instance_round_trip_bit_exact(tmp_path, dtype, pattern):
    p = generate(family="small", d_in=32, d_out=5, seed=4, pattern=pattern)
    from solvers import MaskProblem
    p = MaskProblem(p.weight.to(dtype), p.gram.to(dtype), p.pattern, p.input_mean, p.input_var,
                    {**p.metadata, "model": "synthetic-x", "layer": "blocks.0.q"})
    path = tmp_path / "inst.safetensors"
    iid = save_instance(p, path)
    q = load_instance(path)
    assert q.instance_id() == iid == p.instance_id()
    for name in ("weight", "gram", "input_mean", "input_var"):
        a, b = getattr(p, name), getattr(q, name)
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert q.pattern == p.pattern
    assert q.metadata == p.metadata


def test_mask_round_trip(tmp_path):
    p = generate(family="tiny", seed=1)
    r = solve("wanda", p)
    save_mask(r.mask, tmp_path / "m.safetensors", {"solver": "wanda"})
    mask, meta = load_mask(tmp_path / "m.safetensors")
    assert torch.equal(mask, r.mask) and meta["solver"] == "wanda" and meta["format"] == "maskbench-mask"


def test_truncated_and_malformed_files_fail_cleanly(tmp_path):
    p = generate(family="tiny", seed=2)
    path = tmp_path / "inst.safetensors"
    save_instance(p, path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InstanceFileError, match="trunc.safetensors: not a valid safetensors"):
        load_instance(tmp_path / "trunc.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(InstanceFileError, match="junk"):
        load_instance(tmp_path / "junk.safetensors")
    with pytest.raises(InstanceFileError, match="no such instance file"):
        load_instance(tmp_path / "missing.safetensors")
    save_file({"weight": torch.zeros(2, 4)}, str(tmp_path / "nogram.safetensors"),
              metadata={"pattern": "per-row", "k": "1"})
    with pytest.raises(InstanceFileError, match="missing tensor"):
        load_instance(tmp_path / "nogram.safetensors")
    save_file({"weight": torch.zeros(2, 4), "gram": torch.eye(4)}, str(tmp_path / "nopat.safetensors"))
    with pytest.raises(InstanceFileError, match="pattern"):
        load_instance(tmp_path / "nopat.safetensors")
    save_file({"weight": torch.zeros(2, 4), "gram": torch.eye(4)}, str(tmp_path / "badk.safetensors"),
              metadata={"pattern": "per-row", "k": "9"})
    with pytest.raises(InstanceFileError, match="k=9"):
        load_instance(tmp_path / "badk.safetensors")
    save_file({"other": torch.zeros(2)}, str(tmp_path / "nomask.safetensors"), metadata={"format": "maskbench-mask"})
    with pytest.raises(InstanceFileError, match="no tensor named 'mask'"):
        load_mask(tmp_path / "nomask.safetensors")


def test_an_instance_file_is_refused_as_a_mask(tmp_path):
    problem = generate(family="tiny", d_in=12, d_out=3, seed=0)
    save_instance(problem, tmp_path / "inst.safetensors")
    with pytest.raises(InstanceFileError, match="maskbench-instance"):
        load_mask(tmp_path / "inst.safetensors")


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    problem = generate(family="tiny", d_in=12, d_out=3, seed=0)
    save_instance(problem, tmp_path / "inst.safetensors")
    save_mask(solve("wanda", problem).mask, tmp_path / "mask.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("inst.safetensors", "mask.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
