"""A LLaMA checkpoint with random weights at a real model's shape, saved in bf16 as Hugging Face folders
are, for measuring memory and speed at that size without downloading the model (weights do not change
either). Default: LLaMA-3.2-1B's config (1.24 billion parameters, 2.5 GB in bf16).

    python benches/random_llama.py OUT_DIR [--tokenizer FOLDER_WITH_tokenizer.json] [--dtype bfloat16|float32]

The tokenizer is copied from the given folder (any LLaMA-family tokenizer whose ids fit the vocabulary;
../shared/models/SmolLM2-135M-Instruct's does), so that `bench` can run the folder as a backbone.
"""

import argparse
import shutil
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tokenizer", default="../shared/models/SmolLM2-135M-Instruct")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    # LLaMA-3.2-1B (meta-llama/Llama-3.2-1B config.json), but the special token ids, which follow the tokenizer.
    config = LlamaConfig(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=64, vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192},
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, hidden_act="silu")
    model = LlamaForCausalLM(config).to(getattr(torch, args.dtype))
    out = Path(args.out)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(Path(args.tokenizer) / "tokenizer.json", out / "tokenizer.json")
    print(f"{sum(p.numel() for p in model.parameters()) / 1e9:.3f} billion parameters, {args.dtype}, in {out}")


if __name__ == "__main__":
    main()
