"""Each stage's parser and completion handling over real raw answers, table-driven.

`tests/data/stage_answers.jsonl` holds answers of the embedded 0.5B model to every stage of the
shared layout on three bundled texts, with each stage's budget and cut at 12 tokens
(`scripts/capture_stage_answers.py`). The expected outcome of each is labelled by hand below. A
loopback stub serves them back (a model does not give a chosen answer on demand), through the
backend and the stage caller as a run uses them; the same answers are served again with a
thinking block in front, in `reasoning_content`, and (JSON stages) inside a code fence.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from coig_writer.construct.calls import ItemContext, StageCaller
from coig_writer.construct.checks import CheckInput, run_checks
from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.stages import STAGES, Stage, StageParams, stage, stage_table
from coig_writer.llm import parse_json_object
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.store import Store

from .servers import _Server, completion, stage_of

ROWS = [json.loads(line) for line in
        (Path(__file__).parent / "data" / "stage_answers.jsonl").read_text("utf-8").splitlines()]
GOLD = {json.loads(line)["id"]: json.loads(line) for line in
        (Path(__file__).parents[1] / "src/coig_writer/data/sample/triplets_zh.jsonl")
        .read_text("utf-8").splitlines()}

# hand-labelled: what a stage makes of each recorded answer (row index -> outcome)
EXPECTED = {
    0: "ok", 1: "truncated", 2: "invalid", 3: "invalid",  # prompt "游子吟": 3 characters
    4: "invalid", 5: "truncated",  # reasoning laid out as JSON in a code fence
    6: "ok", 7: "truncated", 8: "ok", 9: "truncated",
    10: "ok", 11: "truncated", 12: "ok", 13: "truncated", 14: "invalid", 15: "truncated",
    16: "ok", 17: "truncated", 18: "ok", 19: "truncated",
    20: "ok", 21: "truncated", 22: "ok", 23: "truncated", 24: "invalid", 25: "truncated",
    26: "ok", 27: "truncated", 28: "ok", 29: "truncated",
}


def test_every_recorded_answer_is_labelled():
    assert len(ROWS) == len(EXPECTED) == 30
    assert {r["stage"] for r in ROWS} == {s.name for s in STAGES}


class Replay(_Server):
    """Answers each request with the next recorded answer, as the model gave it (content and
    finish reason), optionally wrapped."""

    def __init__(self, answers: list[dict], wrap: str = ""):
        self.answers, self.wrap, self.i = answers, wrap, 0
        super().__init__(self._answer)

    def _answer(self, body):
        row = self.answers[self.i]
        self.i += 1
        assert stage_of(body) == row["stage"]
        text = row["text"]
        if self.wrap == "think":
            text = "<think>用户要的是这一步的结果，我按格式给出。</think>\n" + text
        elif self.wrap == "fence" and stage(row["stage"]).is_json:
            text = "```json\n" + text + "\n```"
        out = completion(text)
        out["choices"][0]["finish_reason"] = row["finish_reason"]
        if self.wrap == "reasoning_content":
            out["choices"][0]["message"]["reasoning_content"] = "先想一想格式。"
        return 200, out, 0.0


def _call_all(tmp_path: Path, wrap: str = "") -> list:
    with Replay(ROWS, wrap) as srv, Store(tmp_path / f"{wrap or 'plain'}.sqlite") as store:
        be = OpenAICompatBackend(srv.base_url, "replay")

        async def go() -> list:
            out = []
            for r in ROWS:  # each with the budget it was recorded with
                cfg = ConstructConfig(retries=0, top_logprobs=0, stages={
                    r["stage"]: StageParams(max_tokens=r["max_tokens"])})
                g = GOLD[r["item"]]
                ctx = ItemContext(item_id=f"{r['item']}-{len(out)}", run_id="t",
                                  article=g["answer"], title=g["title"])
                out.append(await StageCaller(store, be, cfg).call(
                    r["stage"], ctx, 0, prompt=g["query"], reasoning=g["thought"]))
            await be.aclose()
            return out

        return asyncio.run(go())


@pytest.mark.parametrize("wrap", ["", "think", "reasoning_content", "fence"])
def test_each_stage_makes_of_real_answers_what_it_should(tmp_path, wrap):
    results = _call_all(tmp_path, wrap)
    got = {i: "ok" if r.ok else r.error_kind for i, r in enumerate(results)}
    assert got == EXPECTED
    for i, r in enumerate(results):
        if not r.ok:
            continue
        st = stage(ROWS[i]["stage"])
        raw = parse_json_object(ROWS[i]["text"]) if st.is_json else ROWS[i]["text"]
        assert r.output == st.parse(raw)  # wrapping changed nothing
        assert "<think>" not in json.dumps(r.output, ensure_ascii=False)


def test_what_the_parsers_keep_of_real_answers():
    screen = stage("screen").parse(parse_json_object(ROWS[10]["text"]))
    assert (screen["quality"], screen["creativity"]) == (8, 9)
    assert screen["genre_raw"] == "诗歌"  # the model's word for it is kept beside the key
    score = stage("score").parse(parse_json_object(ROWS[8]["text"]))["scores"]
    assert score["reasoning_quality"] == 3 and score["text_creativity"] == 10
    with pytest.raises(ValueError, match="code block"):
        stage("reasoning").parse(ROWS[24]["text"])


def test_a_prompt_that_is_the_poem_passes_its_parser_and_fails_its_check():
    """The 0.5B gave the poem's first lines back as its prompt: parseable, and caught by the
    LLM-free check that the prompt stage declares."""
    g = GOLD["gold-2"]
    prompt = stage("reconstruct_prompt").parse(ROWS[12]["text"])["prompt"]
    res = {r.name: r for r in run_checks(CheckInput(prompt, g["thought"], g["answer"]))}
    assert "prompt_copies_text" in stage("reconstruct_prompt").checks
    assert not res["prompt_copies_text"].passed


def test_the_stage_table_is_the_one_declaration():
    cfg = ConstructConfig()
    assert tuple(cfg.stages) == tuple(s.name for s in STAGES)
    for s in STAGES:
        assert cfg.stages[s.name] == s.sampling
        assert (s.schema is not None) == s.is_json
        assert cfg.template_name(s.name) == f"shared/{s.name}"
    rows = {r["stage"]: r for r in stage_table()}
    assert rows["score"]["scored"][0] == "prompt_quality" and rows["reasoning"]["checks"]


def test_a_new_stage_is_one_object_and_one_template(tmp_path):
    """A stage the package does not have: its object and its template, nothing else."""
    (tmp_path / "zh" / "shared").mkdir(parents=True)
    for name in ("prefix", *(s.name for s in STAGES)):  # the packaged ones, copied as they are
        from importlib import resources

        src = resources.files("coig_writer.prompts").joinpath(f"templates/zh/shared/{name}.yaml")
        (tmp_path / "zh" / "shared" / f"{name}.yaml").write_text(src.read_text("utf-8"), "utf-8")
    for name in ("feedback", "json_retry", "prose_retry"):
        src = resources.files("coig_writer.prompts").joinpath(f"templates/zh/{name}.yaml")
        (tmp_path / "zh" / f"{name}.yaml").write_text(src.read_text("utf-8"), "utf-8")
    (tmp_path / "zh" / "shared" / "title.yaml").write_text(
        "name: title\nversion: 1\noutput: json\nprefix: []\nuser: |\n"
        '  任务：拟题。给上面的文章拟一个标题。只输出 JSON：{"title": "标题"}\n', "utf-8")
    title = Stage("title", "json", ("article", "title"), lambda obj: {"title": str(obj["title"])},
                  StageParams(max_tokens=40), {"type": "object", "properties": {
                      "title": {"type": "string"}}, "required": ["title"]}, retry="json_retry")
    seen = []

    def answer(body):
        seen.append((stage_of(body), body["messages"][-1]["content"][-40:]))
        return 200, completion('{"title": "寸草春晖"}'), 0.0

    with _Server(answer) as srv, Store(tmp_path / "s.sqlite") as store:
        caller = StageCaller(store, OpenAICompatBackend(srv.base_url, "stub"),
                             ConstructConfig(template_dir=str(tmp_path)))
        ctx = ItemContext(item_id="t1", run_id="r", article=GOLD["gold-1"]["answer"])
        res = asyncio.run(caller.call(title, ctx, 0))
        assert res.ok and res.output == {"title": "寸草春晖"} and res.template.startswith("title@v1")
        assert [s for s, _ in seen] == ["title"] and "拟题" in seen[0][1]
        assert store.construct.stages_for("t1")[0].stage == "title"
