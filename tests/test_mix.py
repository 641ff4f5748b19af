"""Mixtures: exact counts and ratios, manifests, determinism, clear errors, exports."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.mix.builder import PRESETS, MixSpec, MixtureError, apportion, build_mixture
from coig_writer.mix.export import export_mixture
from coig_writer.mix.samples import SFTSample, read_general

GENRES = ["poetry"] * 6 + ["novel"] * 3 + ["script"] * 1


def creative(n: int = 30) -> list[SFTSample]:
    return [SFTSample(id=f"cw-{i}", source="coig-writer", kind="creative", lang="zh",
                      prompt=f"写作{i}", reasoning=f"用户想要{i}", response=f"文章{i}",
                      genre=GENRES[i % 10]) for i in range(n)]


def general(n_zh: int, n_en: int) -> list[SFTSample]:
    out = [SFTSample(id=f"zh-{i}", source="g.jsonl", kind="general", lang="zh", prompt=f"问{i}",
                     response=f"答{i}") for i in range(n_zh)]
    return out + [SFTSample(id=f"en-{i}", source="g.jsonl", kind="general", lang="en",
                            prompt=f"q{i}", response=f"a{i}") for i in range(n_en)]


def test_exact_ratio_language_balance_and_manifest():
    mix = build_mixture(creative(30), general(250, 300),
                        MixSpec(ratio="1:12", lang_balance={"zh": 1, "en": 1}, seed=7))
    assert mix.counts == {"creative": 30, "general": 360, "total": 390, "ratio": "1:12.00",
                          "general_by_lang": {"en": 180, "zh": 180}}
    man = mix.manifest()
    assert len(man["samples"]) == 390
    assert {(s["kind"], s["id"]) for s in man["samples"]} == {(s.kind, s.id) for s in mix.samples}
    assert len({s["id"] for s in man["samples"]}) == 390
    again = build_mixture(creative(30), general(250, 300),
                          MixSpec(ratio="1:12", lang_balance={"zh": 1, "en": 1}, seed=7))
    assert again.manifest()["sha256"] == man["sha256"]
    other = build_mixture(creative(30), general(250, 300),
                          MixSpec(ratio="1:12", lang_balance={"zh": 1, "en": 1}, seed=8))
    assert other.manifest()["sha256"] != man["sha256"]


def test_counts_and_unsatisfiable_mixtures():
    mix = build_mixture(creative(30), general(50, 50), MixSpec(creative=10, general=35))
    assert (mix.counts["creative"], mix.counts["general"]) == (10, 35)
    with pytest.raises(MixtureError, match="need 600 general samples, only 100"):
        build_mixture(creative(30), general(50, 50), MixSpec(ratio="1:20"))
    with pytest.raises(MixtureError, match="need 180 general en samples, only 100"):
        build_mixture(creative(30), general(300, 100),
                      MixSpec(ratio="1:12", lang_balance={"zh": 1, "en": 1}))
    with pytest.raises(MixtureError, match="choose counts"):
        build_mixture(creative(31), general(50, 50), MixSpec(ratio="2:3"))
    with pytest.raises(MixtureError, match="ratio must look like"):
        build_mixture(creative(3), general(5, 5), MixSpec(ratio="one to twelve"))


def test_genre_stratification_keeps_shares():
    mix = build_mixture(creative(100), [], MixSpec(creative=20, stratify_genre=True))
    by = {}
    for s in mix.samples:
        by[s.genre] = by.get(s.genre, 0) + 1
    assert by == {"poetry": 12, "novel": 6, "script": 2}
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}


def test_paper_presets():
    c, g = creative(60), general(10_000, 10_000)
    sizes = {name: build_mixture(c, g, spec).counts for name, spec in PRESETS.items()}
    assert sizes["CW"]["general"] == 0 and sizes["CW"]["creative"] == 60
    assert sizes["CW+2k"]["general_by_lang"] == {"en": 1000, "zh": 1000}
    assert sizes["CW+10k"]["general"] == 10_000 and sizes["CW+20k"]["general"] == 20_000
    assert sizes["G"] == {"creative": 0, "general": 20_000, "total": 20_000, "ratio": "0:1",
                          "general_by_lang": {"en": 10_000, "zh": 10_000}}


def test_general_formats_and_malformed_rows(tmp_path):
    f = tmp_path / "g.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "Explain tides."},
                      {"role": "assistant", "content": "<think>moon</think>Tides come from the moon."}]},
        {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好！"}]},
        {"instruction": "Add 2+2", "output": "4", "reasoning": "2 plus 2"},
        {"prompt": "no answer"},
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    ]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{bad\n", "utf-8")
    good, bad = read_general(f)
    assert [(s.lang, s.reasoning, s.response) for s in good] == [
        ("en", "moon", "Tides come from the moon."), ("zh", "", "你好！"), ("en", "2 plus 2", "4")]
    assert [(b.line, b.error.split(" ")[0]) for b in bad] == [(4, "missing"), (5, "need"), (6, "invalid")]


def test_exports(tmp_path):
    mix = build_mixture(creative(5), general(30, 30), MixSpec(ratio="1:12", name="cw-test"))
    files = export_mixture(mix, tmp_path / "mix", reasoning="think")
    trl = [json.loads(x) for x in files["trl"].read_text("utf-8").splitlines()]
    assert len(trl) == 65
    cw = next(r for r in trl if r["id"] == "cw-0")
    assert cw["prompt"] == [{"role": "user", "content": "写作0"}]
    assert cw["completion"][0]["content"] == "<think>\n用户想要0\n</think>\n\n文章0"
    info = json.loads(files["dataset_info"].read_text("utf-8"))
    assert info["cw-test"]["formatting"] == "sharegpt"
    lf = json.loads(files["llamafactory"].read_text("utf-8"))
    assert len(lf) == 65 and lf[0]["conversations"][0]["from"] == "human"
    cfg = yaml.safe_load(files["train_config"].read_text("utf-8"))
    assert (cfg["epochs"], cfg["learning_rate"], cfg["global_batch"], cfg["warmup_ratio"],
            cfg["max_length"]) == (3, 2e-5, 32, 0.1, 8192)
    assert json.loads(files["manifest"].read_text("utf-8"))["counts"]["general"] == 60
    dropped = export_mixture(mix, tmp_path / "nothink", reasoning="drop")
    assert "<think>" not in dropped["trl"].read_text("utf-8")
    # LLaMA-Factory runs on every visible GPU: accumulation x per-device x GPUs = 32, ZeRO-3 beside it
    for gpus, accum in ((1, 32), (8, 4), (16, 2)):
        f = export_mixture(mix, tmp_path / f"g{gpus}", gpus=gpus)
        lf_cfg = yaml.safe_load(f["llamafactory_config"].read_text("utf-8"))
        assert lf_cfg["gradient_accumulation_steps"] == accum and lf_cfg["per_device_train_batch_size"] == 1
        ds = json.loads(Path(lf_cfg["deepspeed"]).read_text("utf-8"))
        assert ds["zero_optimization"]["stage"] == 3
    from coig_writer.train.world import TrainError

    with pytest.raises(TrainError, match="x 3 device"):
        export_mixture(mix, tmp_path / "g3", gpus=3)


def test_cli_mix_build_from_triplet_file(tmp_path):
    trip = tmp_path / "cw.jsonl"
    trip.write_text("\n".join(json.dumps({"id": i, "query": f"写{i}", "thought": "想", "answer": f"文{i}"},
                                         ensure_ascii=False) for i in range(4)), "utf-8")
    gen = tmp_path / "g.jsonl"
    gen.write_text("\n".join(json.dumps({"prompt": f"q{i}", "response": f"a{i}"}) for i in range(10)),
                   "utf-8")
    r = CliRunner().invoke(app, ["mix", "build", "--triplets", str(trip), "--general-file", str(gen),
                                 "--ratio", "1:2", "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "'creative': 4, 'general': 8" in r.output
    r = CliRunner().invoke(app, ["mix", "build", "--triplets", str(trip), "--general-file", str(gen),
                                 "--ratio", "1:3", "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "need 12 general samples, only 10" in r.output
