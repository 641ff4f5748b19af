"""Trainable transformers folders without a hub download: an embedded GGUF dequantised to a
normal model, or random weights in a known model's shape (for throughput and memory runs)."""

from __future__ import annotations

from pathlib import Path

from .memory import Shape
from .tiny import with_qwen_tokenizer


def gguf_to_hf(gguf: Path, out: Path) -> Path:
    """Load a GGUF through transformers (pip install gguf) and save it as bf16 safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    model.hf_quantizer = None  # the weights are dequantised now: save a plain model
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def random_model(shape: Shape, out: Path, max_positions: int = 32768, seed: int = 0) -> Path:
    """A Qwen2 model of `shape` with random bf16 weights and the Qwen tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = with_qwen_tokenizer(out)
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=max(shape.vocab, len(tok)), hidden_size=shape.hidden,
                      intermediate_size=shape.intermediate, num_hidden_layers=shape.layers,
                      num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                      tie_word_embeddings=shape.tied, max_position_embeddings=max_positions,
                      rope_theta=1e6, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    return out
