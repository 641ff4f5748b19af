"""LLM-free reasoning checks: pasted text, requirement coverage, decision kinds, length band."""

from __future__ import annotations

import random

from coig_writer.construct.checks import (
    ReasoningChecks,
    longest_shared_run,
    reasoning_problems,
    reasoning_report,
    requirement_phrases,
)

PROMPT = "请以“秋夜思乡”为主题，写一篇不少于300字的散文，语言含蓄，结尾要回到童年的记忆。"
TEXT = ("秋夜的风从窗缝里钻进来，带着桂花将谢未谢的香气。我坐在灯下，翻开一本旧书，书页里夹着"
        "一片枯黄的银杏叶，那是很多年前从老家院子里捡来的。" * 3
        + "我忽然想起童年，母亲在灶前烧火，火光映着她的脸，屋外是一整片安静的稻田。")
GOOD = ("首先理解题意：主题是秋夜思乡，文体为散文，不少于300字，语言要含蓄。\n"
        "结构上分三段：开头写秋夜的环境，中间借旧物引出回忆，结尾回到童年的记忆。\n"
        "文化背景：桂花、银杏是中国传统秋天的意象，可以承载思乡的情感。\n"
        "情节推进：从眼前的风和香气，转到书中的叶子，再转到母亲与灶火，情感逐步递进。\n"
        "最后检查：避免直白地说“我想家”，把情感藏在细节里，修改过于直露的句子。")


def test_a_good_plan_passes() -> None:
    assert reasoning_problems(PROMPT, GOOD, TEXT, ReasoningChecks()) == []
    rep = reasoning_report(PROMPT, GOOD, TEXT)
    assert rep["kinds_present"] == 5
    assert all(v["present"] for v in rep["decision_kinds"].values())
    assert rep["requirements"]["coverage"] >= 0.5


def test_a_reasoning_that_pastes_the_text_is_flagged() -> None:
    pasted = "我的思路如下。\n" + TEXT + "\n以上就是文章。"
    problems = reasoning_problems(PROMPT, pasted, TEXT, ReasoningChecks())
    assert any(p.startswith("reasoning_copies_text: longest shared run") for p in problems)
    assert any("-gram overlap" in p for p in problems)
    rep = reasoning_report(PROMPT, pasted, TEXT)
    assert rep["copy"]["longest_run"] >= len(TEXT.replace(" ", "")) - 1
    assert rep["copy"]["text_in_reasoning"] == 1.0


def test_short_quotes_are_allowed() -> None:
    quoting = GOOD + "\n可以用“火光映着她的脸”这样的细节收尾。"
    assert not any("copies" in p for p in reasoning_problems(PROMPT, quoting, TEXT))


def test_missing_requirements_decisions_and_length_are_named() -> None:
    thin = "写得好一点。"
    problems = reasoning_problems(PROMPT, thin, TEXT, ReasoningChecks(min_length_ratio=0.05,
                                                                      max_length_ratio=20))
    names = {p.split(":")[0] for p in problems}
    assert names == {"reasoning_misses_requirements", "reasoning_lacks_decisions",
                     "reasoning_length_ratio"}
    assert any("absent: interpretation_planning" in p for p in problems)
    # each check can be switched off
    off = ReasoningChecks(min_requirement_coverage=None, min_decision_kinds=None,
                          min_length_ratio=None)
    assert reasoning_problems(PROMPT, thin, TEXT, off) == []


def test_english_keywords_and_requirements() -> None:
    prompt = "Write a 500-word short story set in a lighthouse, in a melancholic tone."
    reasoning = ("First, interpret the prompt: a short story, about 500 words, set in a "
                 "lighthouse, melancholic tone. Structure: three scenes. The plot turns when "
                 "the keeper finds a letter; revise the ending to avoid sentimentality.")
    text = "The lamp turned all night. " * 30
    rep = reasoning_report(prompt, reasoning, text)
    assert rep["problems"] == []
    assert rep["decision_kinds"]["revision"]["present"]
    assert not rep["decision_kinds"]["cultural_context"]["present"]
    assert any("500" in p for p in requirement_phrases(prompt))


def test_longest_shared_run_matches_brute_force() -> None:
    rng = random.Random(0)
    for _ in range(200):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        brute = max((j - i for i in range(len(a)) for j in range(i + 1, len(a) + 1)
                     if a[i:j] in b), default=0)
        assert longest_shared_run(a, b) == brute, (a, b)
