"""A store with users, triplets (one carrying injected HTML) and model outputs to rank."""

from __future__ import annotations

import json
import re
from pathlib import Path

from coig_writer.evaluate.prompt_sets import add_prompt_set
from coig_writer.records import SCORE_DIMENSIONS, Generation, Provenance, Scores, Triplet
from coig_writer.review.auth import add_user
from coig_writer.review.service import ReviewPolicy, assign_reviews
from coig_writer.store import Store

from .servers import _Server, completion, stage_of

PASSWORD = "correct horse battery"
EVIL = "<script>window.__pwned = 1; alert('xss')</script><img src=x onerror=\"window.__pwned=2\">"
POLICY = ReviewPolicy(k=2, per_genre={"poetry": 3})


def build(db: Path) -> None:
    with Store(db) as s:
        for name, role in (("admin", "admin"), ("rev1", "reviewer"), ("rev2", "reviewer"),
                           ("rev3", "reviewer"), ("rater1", "rater"), ("rater2", "rater")):
            add_user(s, name, PASSWORD, role)
        s.construct.put_triplet(Triplet(id="cw-1", query="写一首秋天的诗", thought="用户想要秋天……",
                              answer="秋风起兮白云飞。", category="poetry", genre="classical_shi",
                              provenance=Provenance(source_url="https://example.org/1")))
        s.construct.put_triplet(Triplet(id="cw-2", query="写一个故事", thought="首先我需要……",
                              answer="从前有一座山。" + EVIL, category="novel", genre="fantasy"))
        s.construct.put_triplet(Triplet(id="cw-3", query="写一封信", thought="用户想要一封信",
                              answer="亲爱的朋友：你好。", category="communication", genre="letter",
                              scores=Scores(**{d: 6 for d in SCORE_DIMENSIONS}),
                              validation={"coherent": True, "issues": ["指令过于笼统"],
                                          "suggestion": "写明收信人和情境"}))
        assign_reviews(s, POLICY)
        add_prompt_set(s, "bundled-zh")
        for p in s.evaluation.eval_prompts()[:2]:
            for m in ("model-a", "model-b", "model-c"):
                text = f"第{m[-1]}种回答：{p.id}" + (EVIL if m == "model-b" else "")
                s.evaluation.put_generation(Generation(model=m, prompt_id=p.id, raw=text, answer=text))


# -- a loopback OpenAI-protocol stub that answers the construction stages ----------------------
# Used only where the 0.5B model cannot be made to pass the score thresholds on demand.
STUB_PROMPT = "写一封给久别老友的信：语气温暖，回忆少年时一起放风筝的日子，三百字左右。"
STUB_REASONING = ("首先理解题意：用户要一封写给老朋友的信。我先确定语气：温暖而克制，不煽情。开头问候，"
                  "接着回忆少年时一起放风筝的春天，用一两个具体细节唤起共同记忆；中段写"
                  "如今各自的生活，承认疏远，但不责怪；结尾约定重逢，留一点期待。篇幅控制"
                  "在三百字左右，句子短，口语化，像真的写信。最后检查修改，删去空话。") * 2


GOLD = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "src" / "coig_writer"
                                       / "data" / "sample" / "triplets_zh.jsonl")
        .read_text("utf-8").splitlines()]
GOLD_TEXT = GOLD[0]["answer"]  # 游子吟: a text whose hand-written triplet passes every check


def checks_off() -> dict:
    """ConstructConfig fields that turn every LLM-free check off: for tests of the review loop
    whose fixture texts are too short for the checks (and whose stub answers do not fit them)."""
    from coig_writer.construct.checks import ChecksConfig

    return {"checks": {name: None for name, f in ChecksConfig.model_fields.items()
                       if f.default is not None and "None" in str(f.annotation)}}


def gold_for(user: str) -> dict | None:
    """The hand-written triplet of the bundled text a request shows, if it shows one."""
    return next((g for g in GOLD if g["answer"] in user), None)


def stage_answer(body: dict) -> str:
    """The fixed valid answer for the stage a request belongs to (`servers.stage_of`, either
    layout): for a bundled text the request shows, its hand-written prompt and reasoning (they
    pass the LLM-free checks); for any other text a letter's (they do not fit it). The reasoning
    echoes reviewer feedback it was given, to show the feedback reached it."""
    stage = stage_of(body)
    user = body["messages"][-1]["content"]
    gold = gold_for(user)
    if stage == "screen":
        genre = gold["genre"] if gold else "letter"
        return json.dumps({"quality": 8, "creativity": 8, "category": "", "genre": genre,
                           "reason": "完整"}, ensure_ascii=False)
    if stage == "reconstruct_prompt":
        return gold["query"] if gold else STUB_PROMPT
    if stage == "reasoning":
        mark = re.search(r"FB-\w+", user)
        return (f"（已按反馈 {mark.group(0)} 修改）" if mark else "") + \
            (gold["thought"] if gold else STUB_REASONING)
    if stage == "validate":
        return json.dumps({"coherent": True, "issues": [], "suggestion": ""})
    return json.dumps({d: 9 for d in SCORE_DIMENSIONS} | {"comment": "可再具体些"})


class StageStub(_Server):
    """Answers every construction stage with `stage_answer`, after `delay` seconds."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        super().__init__(lambda body: (200, completion(stage_answer(body)), self.delay))
