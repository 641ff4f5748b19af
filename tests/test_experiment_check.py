"""The experiment plan checked as a whole before its first step: every problem listed at once,
exit 2, nothing run (nothing here trains or generates)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.experiment.check import PlanProblems, check_plan, shortfalls
from coig_writer.experiment.graph import build_graph, input_hash, step_inputs
from coig_writer.experiment.init import init_plan
from coig_writer.experiment.plan import load_plan
from coig_writer.experiment.runner import dispatch, file_inputs, run_plan, steps_to_run
from coig_writer.experiment.steps import Context
from coig_writer.llm.server import free_port
from coig_writer.mix.builder import MixSpec
from coig_writer.mix.samples import SFTSample
from coig_writer.store import Store

BASE = "my-org/base-model"  # a hub id: nothing is trained, so nothing is fetched
run = CliRunner().invoke


def zh_only(path: Path, n: int = 8) -> Path:
    rows = [{"id": f"z{i}", "lang": "zh", "prompt": f"介绍一下第{i}座城市。",
             "response": f"第{i}座城市依山傍水，四季分明。"} for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def edit(folder: Path, change) -> None:
    plan = yaml.safe_load((folder / "plan.yaml").read_text("utf-8"))
    change(plan)
    (folder / "plan.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), "utf-8")


def recorded(folder: Path) -> list[dict]:
    if not (folder / "store.sqlite").exists():
        return []
    with Store(folder / "store.sqlite") as s:
        return s.experiment.steps()


def test_a_general_file_of_chinese_rows_only_is_refused_before_anything_runs(tmp_path):
    """The smoke preset with a zh-only general file once trained CW for 21 s and then failed
    at mixture:G; now init and run both say so first, with the numbers, and run nothing."""
    general = zh_only(tmp_path / "zh.jsonl")
    folder = tmp_path / "exp"
    r = run(app, ["experiment", "init", str(folder), "--preset", "smoke", "--general-file",
                  str(general), "--base-model", BASE], env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    assert f"plan written to {folder / 'plan.yaml'}" in r.output
    assert "mixture:G: need 4 general en samples, only 0 available (creative: 8; general: 8 zh)" \
        in r.output
    r = run(app, ["experiment", "run", str(folder)], env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    assert "cannot run as it is (1 problem)" in r.output and "nothing was run" in r.output
    assert "need 4 general en samples, only 0 available" in r.output
    assert recorded(folder) == []
    r = run(app, ["experiment", "init", str(folder), "--preset", "smoke", "--general-file",
                  str(general), "--base-model", BASE, "--no-check"])
    assert r.exit_code == 0, r.output


def test_every_problem_is_listed_at_once(tmp_path, llama_server):
    folder = tmp_path / "exp"
    init_plan(folder, "smoke", general_files=[zh_only(tmp_path / "zh.jsonl")], base_model=BASE)
    dead = f"http://127.0.0.1:{free_port()}/v1"

    def break_it(p):
        p["mixtures"].append({"name": "CW+en", "general": 2, "lang_balance": {"en": 1}})
        p["eval_sets"].append({"source": "no-such-prompts.jsonl"})
        p["training"]["launcher"] = {"strategy": "fsdp2", "nproc": 64}
        p["generation"]["engine"] = "llama.cpp"
        p["judge"] = {**p["judge"], "backend": "openai", "base_url": [dead, llama_server],
                      "model": "no-such-model"}
    edit(folder, break_it)
    with pytest.raises(PlanProblems) as e:
        run_plan(folder, log=lambda _: None)
    found = {p.where: p.message for p in e.value.problems}
    assert found["prompts"].startswith("eval set no-such-prompts.jsonl: no such file")
    assert found["mixture:G"] == "need 4 general en samples, only 0 available (creative: 8; general: 8 zh)"
    assert found["mixture:CW+en"].startswith("need 2 general en samples, only 0 available")
    assert found["train:CW, train:G, train:CW+en"].startswith("strategy fsdp2 needs 64 GPUs; ")
    assert found["generation.engine"].startswith("llama.cpp serves .gguf files")
    judge = [m for p in e.value.problems if p.where == "judge" for m in [p.message]]
    assert judge[0].startswith(f"{dead} does not answer (ConnectError")
    assert judge[1] == f"{llama_server} does not serve the model 'no-such-model' (it serves: qwen-0.5b)"
    assert len(e.value.problems) == 7 and recorded(folder) == []
    r = run(app, ["experiment", "run", str(folder)], env={"COLUMNS": "300"})
    assert r.exit_code == 2 and "(7 problems)" in r.output and "Traceback" not in r.output
    edit(folder, lambda p: p["judge"].update(model="qwen-0.5b", base_url=[llama_server]))
    plan, where = load_plan(folder)
    assert not [p for p in check_plan(plan, where) if p.where.startswith("judge")]


def test_only_the_steps_that_will_run_are_checked(tmp_path):
    folder = tmp_path / "exp"
    init_plan(folder, "smoke", base_model=BASE)  # its own general rows: 4 zh, 4 en
    plan, folder = load_plan(folder)
    graph = build_graph(plan)
    with Store(folder / "store.sqlite") as s:
        ctx, outputs = Context(plan, folder, s, log=lambda *_: None), {}
        for step in graph[:3]:  # prompts and both mixtures, for real (seconds)
            inputs = step_inputs(step, outputs, file_inputs(ctx, step))
            s.experiment.start_step(step.name, input_hash(inputs), inputs)
            out, _ = dispatch(ctx, step, outputs, input_hash(inputs), True)
            s.experiment.finish_step(step.name, "done", out, seconds=0.0)
            outputs[step.name] = out
        todo = steps_to_run(ctx, s.experiment, graph)
        assert todo == [st.name for st in graph[3:]]
        edit(folder, lambda p: p["mixtures"][0].update(seed=1))
        plan, _ = load_plan(folder)
        ctx.plan = plan
        assert steps_to_run(ctx, s.experiment, build_graph(plan)) == [
            st.name for st in graph if st.name not in ("prompts", "mixture:G")]
    plan.generation.engine = "vllm"
    plan.judge = plan.judge.model_copy(update={"backend": "openai", "model": "m",
                                               "base_url": [f"http://127.0.0.1:{free_port()}/v1"]})
    everything = {p.where for p in check_plan(plan, folder, gpus=0)}
    assert {"generation.engine", "judge"} <= everything
    assert check_plan(plan, folder, steps=["report"], gpus=0) == []  # a report rerun needs neither


def test_shortfalls_name_the_numbers():
    zh = [SFTSample(id=f"z{i}", source="g", kind="general", lang="zh", prompt="p", response="r")
          for i in range(3)]
    cw = [SFTSample(id=f"c{i}", source="c", kind="creative", lang="zh", prompt="p", response="r")
          for i in range(5)]
    assert shortfalls(MixSpec(creative=6, general=2, lang_balance={"zh": 1, "en": 1}), cw, zh) == [
        "need 6 creative samples, only 5 available", "need 1 general en samples, only 0 available"]
    assert shortfalls(MixSpec(ratio="1:3"), cw, zh) == ["need 15 general samples, only 3 available"]
    assert shortfalls(MixSpec(ratio="2:1"), cw, zh)[0].startswith("5 creative samples at 2:1 need")
    assert shortfalls(MixSpec(general=0), [], zh) == ["it would hold no samples"]
    assert shortfalls(MixSpec(general=3, lang_balance={"zh": 1}), cw, zh) == []
