"""Rendering with a real Qwen chat template, loss masks, and a tiny-model SFT run on CPU."""

import json

import pytest

from coig_writer.mix.render import TemplateCheckError, check_template, prompt_completion
from coig_writer.mix.samples import SFTSample
from coig_writer.train.config import TrainConfig
from coig_writer.train.launcher import TrainError, train
from coig_writer.train.tiny import build_tiny_model

transformers = pytest.importorskip("transformers")

S = SFTSample(id="1", source="t", kind="creative", prompt="写一首关于秋天的诗",
              reasoning="用户想要一首秋天的诗，首先我需要选一个意象。", response="秋风起兮白云飞。")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_loss_mask_covers_reasoning_and_answer_only(tiny):
    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    c = check_template(tok, S, "think")
    assert c.trained_text.startswith("<think>\n" + S.reasoning)
    assert c.trained_text.rstrip().endswith("秋风起兮白云飞。<|im_end|>")
    assert S.prompt not in c.trained_text and S.prompt in c.text
    assert 0 < c.prompt_tokens < c.total_tokens
    d = check_template(tok, S, "drop")
    assert S.reasoning not in d.text and "秋风起兮白云飞" in d.trained_text


def test_template_without_thinking_slot_is_an_error(tiny):
    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    tok.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content.split('</think>')[-1]"
                         " }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    with pytest.raises(TemplateCheckError, match="no thinking slot"):
        check_template(tok, S, "think")


def test_tiny_sft_lowers_loss_and_resumes(tiny, tmp_path):
    words = ["春天", "夏天", "秋天", "冬天", "月亮", "星星", "大海", "高山"]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(prompt_completion(SFTSample(
        id=str(i), source="t", kind="creative", prompt=f"写一句关于{w}的话",
        reasoning=f"用户想要{w}，我先想一个意象。", response=f"{w}是一种美好的东西。")),
        ensure_ascii=False) + "\n" for i, w in enumerate(words)), "utf-8")
    cfg = TrainConfig(model=str(tiny), data=str(data), output_dir=str(tmp_path / "run"),
                      epochs=6, learning_rate=5e-3, global_batch=4, per_device_batch=4,
                      max_length=128, logging_steps=2, save_steps=6, max_steps=6, bf16=False)
    first = train(cfg)
    assert first["global_step"] == 6 and first["resumed_from"] is None
    losses = [json.loads(x)["loss"] for x in (tmp_path / "run/loss.jsonl").read_text().splitlines()
              if "loss" in json.loads(x)]
    assert losses[-1] < losses[0] - 1.0
    second = train(cfg.model_copy(update={"max_steps": 10}))
    assert second["resumed_from"].endswith("checkpoint-6") and second["global_step"] == 10
    assert (tmp_path / "run/final/config.json").exists()
    with pytest.raises(TrainError, match="not a multiple"):
        train(cfg.model_copy(update={"global_batch": 6}))
    with pytest.raises(TrainError, match="no training data"):
        train(cfg.model_copy(update={"data": str(tmp_path / "none.jsonl")}))
