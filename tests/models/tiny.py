"""Tiny random-initialised GPT-2, OPT and Llama models built from configs (no download)."""

from __future__ import annotations

import torch

VOCAB = 300
ARCHS = ("gpt2", "opt", "llama")


def tiny_model(arch: str, seed: int = 0, vocab: int = VOCAB) -> torch.nn.Module:
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


def random_windows(n: int = 6, seqlen: int = 16, seed: int = 0, vocab: int = VOCAB) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n, seqlen), generator=g)


def save_tiny_llama(path):
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
    tiny_model("llama", vocab=len(fast)).save_pretrained(path)
    return path
