"""Rendering with a real Qwen chat template, loss masks, batch arithmetic, padding-free batches,
precision and a tiny-model SFT run on CPU (the distributed runs are in test_train_distributed.py)."""

import json
from pathlib import Path

import pytest

from coig_writer.mix.render import TemplateCheckError, check_template, prompt_completion
from coig_writer.mix.samples import SFTSample
from coig_writer.train.config import TrainConfig
from coig_writer.train.launcher import TrainError, train
from coig_writer.train.tiny import build_tiny_model, write_tiny_data
from coig_writer.train.world import batch_plan, detect_world

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


def test_batch_arithmetic_and_world_from_the_environment(tiny, tmp_path, monkeypatch):
    assert batch_plan(32, 1, 8, 8192).accumulation == 4
    assert batch_plan(32, 2, 16, 8192).accumulation == 1
    with pytest.raises(TrainError, match=r"global_batch 32 .* 1 x 3 device\(s\) = 3.*30 or 33"):
        batch_plan(32, 1, 3, 8192)
    with pytest.raises(TrainError, match="per_device_batch 4 x 16 device"):
        batch_plan(32, 4, 16, 8192)
    w = detect_world({"RANK": "3", "WORLD_SIZE": "16", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "8",
                      "TORCHELASTIC_RUN_ID": "x"})
    assert (w.size, w.rank, w.local_rank, w.nodes, w.launcher) == (16, 3, 3, 2, "torchrun")
    w = detect_world({"SLURM_PROCID": "9", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1",
                      "SLURM_NTASKS_PER_NODE": "8(x2)", "MASTER_ADDR": "node1"})
    assert (w.size, w.rank, w.local_rank, w.nodes, w.launcher) == (16, 9, 1, 2, "srun")
    assert detect_world({}).size == 1
    # under a world of 3, global batch 32 is refused before the (missing) model is even looked at
    data = write_tiny_data(tmp_path / "d.jsonl", 4)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(TrainError, match="x 3 device"):
        train(TrainConfig(model=str(tmp_path / "no-model"), data=str(data), output_dir=str(tmp_path / "r")))


def test_padding_free_batch_loss_is_the_token_weighted_loss_of_its_samples(tiny, tmp_path):
    """Per-sample position ids make the installed transformers build a block-diagonal SDPA mask:
    the concatenated batch scores exactly like its samples run one by one."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from coig_writer.train.data import tokenized_dataset

    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    ds, report = tokenized_dataset(write_tiny_data(tmp_path / "d.jsonl", 4), tok, 256, "truncate")
    assert report.kept == 4 and report.overlong == 0
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32,
                                                              attn_implementation="sdpa").eval()
    rows = [ds[i] for i in range(4)]
    batch = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(rows)
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1
    assert (batch["input_ids"] != tok.pad_token_id).all()  # not one pad token
    with torch.no_grad():
        # use_cache=False as SFTTrainer.compute_loss passes it: with a cache, transformers skips
        # the packed-sequence detection and the samples would attend to each other
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       labels=batch["labels"], use_cache=False).loss.item()
        total, count = 0.0, 0
        for r in rows:
            ids, labels = torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]])
            n = int((labels[0, 1:] != -100).sum())
            total += model(input_ids=ids, labels=labels).loss.item() * n
            count += n
        # the same tokens as one long causal sequence (samples see each other): a different loss
        leaky = model(input_ids=batch["input_ids"], labels=batch["labels"], use_cache=False).loss.item()
    assert packed == pytest.approx(total / count, abs=1e-5)
    assert abs(leaky - packed) > 1e-4


def test_overlong_samples_truncated_keeping_eos_or_dropped(tiny, tmp_path):
    from coig_writer.train.data import tokenized_dataset

    tok = transformers.AutoTokenizer.from_pretrained(tiny)
    data = write_tiny_data(tmp_path / "d.jsonl", 6, spread=12)
    full, _ = tokenized_dataset(data, tok, 10_000, "truncate")
    lengths = [len(x) for x in full["input_ids"]]
    cut = sorted(lengths)[2]
    ds, rep = tokenized_dataset(data, tok, cut, "truncate")
    assert rep.overlong == sum(n > cut for n in lengths) > 0 and rep.kept == 6
    for before, after in zip(full["input_ids"], ds["input_ids"], strict=True):
        assert len(after) == min(len(before), cut) and after[-2:] == before[-2:]  # <|im_end|>\n kept
        assert after[-2] == tok.eos_token_id
    dropped, rep = tokenized_dataset(data, tok, cut, "drop")
    assert rep.kept == 6 - rep.overlong == len(dropped)


def _weight_shift(cfg: TrainConfig, tiny: Path) -> tuple[float, float]:
    """(distance a layer's weights moved, share of its weights that changed at all)"""
    import torch
    from safetensors.torch import load_file

    result = train(cfg)
    key = "model.layers.0.mlp.down_proj.weight"
    ckpt = Path(cfg.output_dir) / f"checkpoint-{result['global_step']}" / "model.safetensors"
    after = load_file(str(ckpt))[key]
    before = load_file(str(tiny / "model.safetensors"))[key].to(after.dtype)  # as training started
    delta = after.float() - before.float()
    return float(torch.linalg.norm(delta)), float((delta != 0).float().mean())


def test_bf16_autocast_keeps_fp32_master_weights(tiny, tmp_path):
    """At lr 2e-5, bf16 autocast over fp32 weights moves them as far as fp32 does; pure bf16
    (opt-in) loses most updates below bf16's resolution."""
    data = write_tiny_data(tmp_path / "d.jsonl", 8)
    base = dict(model=str(tiny), data=str(data), global_batch=1, per_device_batch=1, max_length=40,
                learning_rate=2e-5, warmup_ratio=0.0, lr_scheduler="constant", max_steps=6,
                save_steps=6, logging_steps=6, gradient_checkpointing=False)
    fp32 = _weight_shift(TrainConfig(**base, bf16=False, output_dir=str(tmp_path / "fp32")), tiny)
    mixed = _weight_shift(TrainConfig(**base, bf16=True, output_dir=str(tmp_path / "mixed")), tiny)
    pure = _weight_shift(TrainConfig(**base, bf16=True, pure_bf16=True, output_dir=str(tmp_path / "pure")),
                         tiny)
    run = json.loads((tmp_path / "mixed/run_config.json").read_text())
    assert run["setup"]["dtype"] == "float32" and run["setup"]["bf16"] is True
    print(f"moved: fp32 {fp32}, bf16 autocast {mixed}, pure bf16 {pure}")
    assert 0.7 < mixed[0] / fp32[0] < 1.3 and mixed[1] > 0.99 and fp32[1] > 0.99, (fp32, mixed)
    assert pure[1] < 0.6 and pure[0] / fp32[0] < 0.9, (fp32, pure)


def test_tiny_sft_lowers_loss_resumes_and_refuses_another_batch(tiny, tmp_path):
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
    rows = [json.loads(x) for x in (tmp_path / "run/loss.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0
    for key in ("tokens_per_s", "tokens_per_s_per_device", "peak_memory_gib", "grad_norm", "step_time_s"):
        assert rows[-1][key] > 0, key
    with pytest.raises(TrainError, match=r"checkpoint-6 was trained with global_batch 4 \(now 8\).*fresh"):
        train(cfg.model_copy(update={"global_batch": 8, "max_steps": 10}))
    second = train(cfg.model_copy(update={"max_steps": 10}))
    assert second["resumed_from"].endswith("checkpoint-6") and second["global_step"] == 10
    done = json.loads((tmp_path / "run/train_result.json").read_text())
    assert done["global_step"] == 10 and done["tokens_per_s"] > 0 and "vllm serve" in done["serve_command"]
    final = tmp_path / "run/final"
    assert json.loads((final / "config.json").read_text())["dtype"] == "bfloat16"
    import torch

    model = transformers.AutoModelForCausalLM.from_pretrained(final)
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    assert "<think>" in transformers.AutoTokenizer.from_pretrained(final).chat_template
    with pytest.raises(TrainError, match="no training data"):
        train(cfg.model_copy(update={"data": str(tmp_path / "none.jsonl")}))


def test_memory_projection_and_disk_refusal(tiny, tmp_path):
    from coig_writer.train.memory import GIB, Projection, Shape, check_disk, project
    from coig_writer.train.plan import KNOWN_SHAPES, paper_plan

    q7 = KNOWN_SHAPES["qwen2.5-7b"]
    assert 7.5e9 < q7.params < 7.7e9  # Qwen2.5-7B has 7.62B parameters
    cfg = transformers.AutoConfig.from_pretrained(tiny)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    assert Shape.of(cfg).params == sum(p.numel() for p in model.parameters())
    # the anchor: ms-swift, Qwen2.5-7B at 8k, ZeRO-3, padding-free, 4 GPUs: 44 GiB per GPU
    assert 38 < project(q7, world=4, strategy="zero3", per_device=1, max_length=8192).total / GIB < 48
    single = project(q7, world=1, strategy="single", per_device=1, max_length=8192)
    assert single.weights + single.gradients + single.optimizer == 16 * q7.params
    off = project(q7, world=1, strategy="single", per_device=1, max_length=8192, checkpointing=False)
    assert 35 < (off.activations - single.activations) / GIB < 50  # the "+42 GiB at 8k"
    rows = {(r.name, r.devices, r.optimizer): r for r in paper_plan()}
    assert not rows["CW", 1, "adamw_fused"].fits and rows["CW", 1, "adamw_8bit"].fits
    assert rows["G", 8, "adamw_fused"].fits and rows["CW+20k", 1, "adamw_8bit"].hours > rows["CW", 1,
                                                                                               "adamw_8bit"].hours
    huge = Projection(0, 0, 0, 0, 0, checkpoint_disk=1e18, final_disk=1e9)
    with pytest.raises(TrainError, match=r"GiB free but 3 checkpoint\(s\).*save_total_limit"):
        check_disk(huge, tmp_path / "out", 3)
