"""Fixtures shared by tests/bench, tests/models and tests/reports.

* ``cli``: run ``python -m bench.cli ARGS`` in a subprocess against this checkout (offline HF).
* ``repo_root``: the checkout's root folder.
* ``arch``: parametrises a test over the tiny architectures GPT-2, OPT and Llama
  (``@pytest.mark.parametrize("arch", [...])`` on a test overrides the list).
* ``tiny_model`` / ``random_windows``: factories of tiny random-initialised models built from
  configs and of seeded token windows (nothing is downloaded).
* ``tiny_llama_dir``: a tiny Llama with a trained 300-token BPE tokenizer saved to disk once per
  session, for the CLI and runner tests that load a model from a directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 300
ARCHS = ("gpt2", "opt", "llama")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, check: bool = False
            ) -> subprocess.CompletedProcess:
    """``python -m bench.cli ARGS`` with this checkout first on the path (offline HF)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "bench.cli", *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"maskbench {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def make_tiny_model(arch: str, seed: int = 0, vocab: int = VOCAB) -> torch.nn.Module:
    """A 2-block GPT-2, OPT or Llama (hidden 32), seeded, fp32, eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM

    torch.manual_seed(seed)
    if arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel(cfg)
    elif arch == "opt":
        cfg = OPTConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=2,
                        max_position_embeddings=64, word_embed_proj_dim=32, dropout=0.0,
                        attention_dropout=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2)
        model = OPTForCausalLM(cfg)
    elif arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                          pad_token_id=0, bos_token_id=1, eos_token_id=2)
        model = LlamaForCausalLM(cfg)
    else:
        raise ValueError(arch)
    return model.to(torch.float32).eval()


def make_random_windows(n: int = 6, seqlen: int = 16, seed: int = 0, vocab: int = VOCAB) -> torch.Tensor:
    """``[n, seqlen]`` token ids uniform in ``[3, vocab)``, seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n, seqlen), generator=g)


def save_tiny_llama(path: Path) -> Path:
    """Save a tiny random Llama with a 300-token byte-level BPE tokenizer (trained here on a slice
    of the default corpus with the ``tokenizers`` library) to ``path``; returns ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from models.calibration import load_corpus

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([load_corpus().text[:20000]], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    fast.save_pretrained(path)
    make_tiny_model("llama", vocab=len(fast)).save_pretrained(path)
    return path


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture
def tiny_model():
    return make_tiny_model


@pytest.fixture
def random_windows():
    return make_random_windows


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
