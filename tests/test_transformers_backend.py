"""The in-process transformers backend against `model.generate` on the tiny random Qwen2."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from coig_writer.llm import ChatRequest, make_backend
from coig_writer.llm.transformers_backend import TransformersBackend
from coig_writer.train.tiny import build_tiny_model

torch = pytest.importorskip("torch")

MSGS = [[{"role": "user", "content": "写一首关于秋天的诗"}],
        [{"role": "system", "content": "You are terse."},
         {"role": "user", "content": "Write a haiku about the sea, please."}],
        [{"role": "user", "content": "讲一个很短的故事"}]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _reference(tiny: Path, msgs: list[dict[str, str]], max_new: int) -> list[int]:
    """What `model.generate` gives for one prompt, no padding, greedy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    out = model.generate(ids, max_new_tokens=max_new, do_sample=False,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_greedy_answers_equal_model_generate_batched_and_one_by_one(tiny):
    be = TransformersBackend(tiny)
    reqs = [ChatRequest.build(m, max_tokens=12) for m in MSGS]

    async def together():
        return await asyncio.gather(*(be.chat(r) for r in reqs))

    batched = asyncio.run(together())
    assert be.batches == [3]  # the three concurrent requests went in one generate
    single = [asyncio.run(be.chat(r)) for r in reqs]
    assert be.batches == [3, 1, 1, 1]
    assert [a.text for a in batched] == [a.text for a in single]
    for m, a in zip(MSGS, batched, strict=True):
        ref = _reference(tiny, m, 12)
        assert a.text == be.decode(ref, 0, 12).text
        assert a.usage["completion_tokens"] == len(ref) and a.usage["prompt_tokens"] > 5
        # a random model never says <|im_end|> in 12 tokens: the answer was cut
        assert a.finish_reason == "length" and a.truncated
        assert a.latency_s > 0
    assert be.model_id.startswith(f"transformers:{tiny.name}:")


def test_decode_splits_thinking_and_reports_stop(tiny):
    be = TransformersBackend(tiny)
    _, tok = be.load()
    ids = tok("<think>先想意象</think>秋风起兮白云飞。<|im_end|>", add_special_tokens=False)["input_ids"]
    r = be.decode(ids + [tok.pad_token_id] * 3, 7, max_tokens=64)
    assert (r.thinking, r.text, r.finish_reason) == ("先想意象", "秋风起兮白云飞。", "stop")
    assert r.usage["completion_tokens"] == len(ids) and r.usage["prompt_tokens"] == 7
    cut = be.decode(ids[:4], 7, max_tokens=4)
    assert cut.finish_reason == "length" and cut.text == ""  # unclosed think: all thinking


def test_sampled_requests_are_reproducible_with_the_seed(tiny):
    be = TransformersBackend(tiny)
    r = ChatRequest.build(MSGS[0], max_tokens=8, temperature=1.0, seed=3)
    assert asyncio.run(be.chat(r)).text == asyncio.run(be.chat(r)).text


def test_make_backend_and_bad_folder(tiny, tmp_path):
    from coig_writer.llm import LLMError

    assert isinstance(make_backend("transformers", model=str(tiny)), TransformersBackend)
    with pytest.raises(LLMError, match="config.json"):
        make_backend("transformers", model=str(tmp_path))


def test_eval_generate_cli_with_transformers_backend(tiny, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "lang": "zh", "prompt": f"写一句话{i}"},
                                          ensure_ascii=False) + "\n" for i in range(3)), "utf-8")
    db = tmp_path / "s.sqlite"
    cli = [sys.executable, "-m", "coig_writer.cli"]
    subprocess.run(cli + ["eval", "prompts", str(prompts), "--db", str(db)], check=True,
                   timeout=120)
    run = subprocess.run(cli + ["eval", "generate", "--name", "tiny", "--db", str(db),
                                "--backend", "transformers", "--model", str(tiny),
                                "--max-tokens", "6", "--max-tokens-cap", "6",
                                "--temperature", "0"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "3 new answers (3 truncated)" in run.stdout
    from coig_writer.store import Store

    with Store(db) as s:
        gens = s.evaluation.generations("tiny")
    assert len(gens) == 3 and all(g.backend_model.startswith("transformers:") for g in gens)
