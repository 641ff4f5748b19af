"""The named LLM-free checks: each with a real passing and a real failing example, the
hand-written triplets passing all of them, every planted defect named by its check, the list
markers of a numbered prompt not taken for requirements, form against genre, the instruction
n-grams of every layout and language, English inputs, and the first checks' report as before."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from coig_writer.construct.checks import (
    CHECKS,
    CheckInput,
    ChecksConfig,
    ReasoningChecks,
    checks_markdown,
    detect_form,
    failed,
    grounding,
    instruction_ngrams,
    instruction_overlap,
    longest_shared_run,
    reasoning_problems,
    reasoning_report,
    requirement_phrases,
    run_checks,
    strip_list_markers,
)
from coig_writer.construct.checks.discrimination import as_input, cross_pairings, discrimination, load_rows
from coig_writer.construct.checks.requirements import requirement_count
from coig_writer.construct.config import ConstructConfig
from coig_writer.genres import load_taxonomy

DATA = Path(__file__).parent / "data" / "gate"
GOLD = {r["id"]: r for r in load_rows()}
GOLD_EN = {r["id"]: r for r in load_rows(DATA / "good_en.jsonl")}
DEFECTS = load_rows(DATA / "defects_zh.jsonl")


def defect(kind: str, n: int = 0) -> dict:
    return [r for r in DEFECTS if r["defect"] == kind][n]


def names(inp: CheckInput, cfg: ChecksConfig | None = None, severity: str | None = None) -> set[str]:
    return {r.name for r in failed(run_checks(inp, cfg), severity)}  # type: ignore[arg-type]


BOILERPLATE = defect("generic_reasoning")["thought"]
REVIEW_EN = ("The poem is a calm farewell. The poet depicts his own grave under the stars and "
             "expresses contentment rather than grief. The second stanza conveys the epitaph he "
             "wants, and the images of the sailor and the hunter returning home portray death as "
             "rest after work. The speaker's tone reflects acceptance.")

# check -> (a real input it passes, a real input it fails[, config])
CASES: dict[str, tuple[CheckInput, CheckInput, ChecksConfig | None]] = {
    "prompt_copies_text": (as_input(GOLD["gold-2"]), as_input(defect("prompt_copies_lines")), None),
    "prompt_parrots_instructions": (as_input(GOLD["gold-1"]), as_input(defect("parroted_prompt")),
                                    None),
    "prompt_mentions_source": (as_input(GOLD["gold-3"]), as_input(defect("mentions_source")), None),
    "prompt_requirements": (as_input(GOLD["gold-4"]),
                            as_input(GOLD["gold-4"], prompt="写一首访友不遇的诗。"), None),
    "reasoning_too_short": (as_input(GOLD["gold-5"]),
                            as_input(GOLD["gold-5"], reasoning="用户想要一首四言诗，我写登高观海。"), None),
    "reasoning_not_prose": (as_input(GOLD["gold-1"]), as_input(defect("json_reasoning")), None),
    "reasoning_not_first_person": (as_input(GOLD["gold-1"]), as_input(defect("third_person_review")),
                                   None),
    "reasoning_not_grounded": (as_input(GOLD["gold-4"]),
                               as_input(defect("reasoning_of_another_text")), None),
    "reasoning_ignores_prompt": (as_input(GOLD["gold-2"]),
                                 as_input(GOLD["gold-2"], prompt=GOLD["gold-3"]["query"]), None),
    "reasoning_generic": (as_input(GOLD["gold-5"]), as_input(defect("generic_reasoning")), None),
    "reasoning_copies_text": (as_input(GOLD["gold-4"]), as_input(defect("pasted_text")), None),
    "reasoning_misses_requirements": (as_input(GOLD["gold-8"]),
                                      as_input(GOLD["gold-8"], reasoning=BOILERPLATE), None),
    "reasoning_lacks_decisions": (as_input(GOLD["gold-4"]), as_input(defect("pasted_text")), None),
    "reasoning_length_ratio": (as_input(GOLD_EN["gold-en-3"]), as_input(GOLD["gold-9"]),
                               ChecksConfig(max_length_ratio=5.0)),
    "form_mismatches_genre": (as_input(GOLD["gold-1"]), as_input(defect("verse_as_essay")), None),
}


def test_docs_list_every_check_with_its_default_threshold() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "gates.md").read_text("utf-8")
    assert checks_markdown() in doc, "docs/gates.md: paste checks_markdown() into 'Named checks'"


def test_the_registry_names_every_check_once_with_its_thresholds() -> None:
    assert set(CASES) == set(CHECKS)
    cfg = ChecksConfig()
    for check in CHECKS.values():
        assert check.fields and all(f in ChecksConfig.model_fields for f in check.fields)
        assert check.enabled(cfg) and check.summary
        off = ChecksConfig(**{f: None for f in check.fields})
        assert not check.enabled(off)
        assert check.name not in {r.name for r in run_checks(as_input(GOLD["gold-1"]), off)}
    assert {c.name for c in CHECKS.values() if c.severity == "review"} == {"form_mismatches_genre"}
    assert ReasoningChecks is ChecksConfig
    loaded = ConstructConfig.model_validate({"reasoning_checks": {"max_copy_run": 10}})
    assert loaded.checks.max_copy_run == 10 and loaded.checks.min_grounding


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_check_has_a_real_pass_and_a_real_failure(name: str) -> None:
    good, bad, cfg = CASES[name]
    cfg = cfg or ChecksConfig()
    (ok,) = run_checks(good, cfg, names=[name])
    (no,) = run_checks(bad, cfg, names=[name])
    assert ok.passed, ok
    assert not no.passed, no
    assert no.threshold == CHECKS[name].threshold(cfg) and no.value != "" and no.detail
    assert no.reason == f"{name}: {no.detail}"
    if name in {"reasoning_length_ratio", "reasoning_copies_text", "reasoning_lacks_decisions"}:
        return  # measurements in numbers; the others say what to do in the triplet's language
    assert re.search(r"[\u4e00-\u9fff]{4}", no.detail), no.detail


def test_every_hand_written_triplet_passes_every_check() -> None:
    assert len(GOLD) == 10 and len(GOLD_EN) == 3
    genres = load_taxonomy().genres_by_key()
    for row in [*GOLD.values(), *GOLD_EN.values()]:
        assert row["genre"] in genres and row["query"] and row["thought"]
        results = run_checks(as_input(row))
        assert len(results) == len(CHECKS)
        assert failed(results, None) == [], (row["id"], [r.reason for r in failed(results, None)])
    sample = {json.loads(line)["title"]: json.loads(line)["text"] for line in Path(
        __file__).parents[1].joinpath("src/coig_writer/data/sample/classical_zh.jsonl")
        .read_text("utf-8").splitlines()}
    assert all(sample[r["title"]] == r["answer"] for r in GOLD.values())  # the exact texts


def test_every_planted_defect_is_named_by_its_check() -> None:
    kinds = {r["defect"] for r in DEFECTS}
    assert kinds >= {"parroted_prompt", "json_reasoning", "final_output_wrapper", "mentions_source",
                     "prompt_copies_lines", "reasoning_of_another_text", "generic_reasoning",
                     "third_person_review", "numbered_good_prompt", "verse_as_essay"}
    for row in DEFECTS:
        results = run_checks(as_input(row))
        found = {r.name for r in failed(results, None)}
        assert set(row["expect_checks"]) <= found, (row["id"], found)
        if not row["expect_checks"]:  # the numbered good prompts pass everything
            assert found == set(), (row["id"], [r.reason for r in failed(results, None)])
        if row["defect"] in ("verse_as_essay", "prose_as_verse"):  # review, never a rejection
            assert failed(results) == [] and found == {"form_mismatches_genre"}


def test_list_markers_are_not_requirements_but_numbers_that_require_still_are() -> None:
    numbered = ("请写一首诗，要求如下：\n1. 写秋天\n2、不少于300字\n（3）四句，押平声韵\n"
                "一、结尾回到童年\n- 语气含蓄")
    phrases = requirement_phrases(numbered)
    assert not any(re.fullmatch(r"[\d一二三四（）()]+", p) for p in phrases), phrases
    assert "不少于300字" in phrases and any("四句" in p for p in phrases)
    assert "1" not in strip_list_markers(numbered) and "300" in strip_list_markers(numbered)
    assert requirement_count(numbered)[0] == 7  # 写秋天 / 300字 / 四句 / 押韵 / 结尾 / 语气, and the ask
    assert requirement_count("写一首诗，谢谢！")[0] == 1
    assert requirement_count("写一首关于秋天的诗。")[0] == 1
    assert requirement_count("Write a 500-word story set in a lighthouse, in a melancholic tone. "
                             "End with the keeper alone. Avoid dialogue.")[0] == 4
    # the demo's false positive: a good numbered prompt is not flagged by any check
    row = defect("numbered_good_prompt")
    assert names(as_input(row)) == set()
    assert "2.5" in strip_list_markers("每段2.5行") and "4-5" in strip_list_markers("4-5 条")


def test_real_user_prompts_are_not_flagged() -> None:
    """The bundled evaluation prompts (user requests with their constraints, zh and en)."""
    eval_dir = Path(__file__).parents[1] / "src/coig_writer/data/eval"
    prompt_checks = [n for n, c in CHECKS.items() if c.target == "prompt"]
    rows = load_rows(eval_dir / "prompts_zh.jsonl") + load_rows(eval_dir / "prompts_en.jsonl")
    for row in rows:
        ask = row["prompt"] + " " + "；".join(row["constraints"])
        results = run_checks(CheckInput(ask, "", "", lang=row["lang"]), names=prompt_checks)
        assert failed(results) == [], (row["id"], [r.reason for r in failed(results)])


def test_forms_of_verse_prose_and_script_in_both_languages() -> None:
    assert {detect_form(r["answer"], "zh") for r in GOLD.values() if r["genre"] != "essay"} == {"verse"}
    assert {detect_form(r["answer"], "zh") for r in GOLD.values() if r["genre"] == "essay"} == {"prose"}
    assert detect_form("床前明月光，疑是地上霜。举头望明月，低头思故乡。", "zh") == "verse"  # one line
    assert detect_form("你走的那天\n站台上的风很轻\n我没有挥手\n怕一挥手\n你就真的远了", "zh") == "verse"
    assert detect_form("春回大地千山秀\n日照神州万木荣", "zh") == "verse"  # a couplet
    crosstalk = "甲：您最近忙什么呢？\n乙：我呀，学说相声。\n甲：那您给大伙来一段。\n乙：好嘞。"
    assert detect_form(crosstalk, "zh") == "script"
    story = ("“你来了？”她问。\n“嗯。”我把伞收起来，靠在门边。\n屋里很暗，只有炉子上的水壶在响，"
             "她把一杯热茶推到我面前，什么也没有说。")
    assert detect_form(story, "zh") == "prose"
    assert detect_form(GOLD_EN["gold-en-1"]["answer"], "en") == "verse"
    assert detect_form(GOLD_EN["gold-en-3"]["answer"], "en") == "prose"
    scene = ("INT. KITCHEN - NIGHT\nANNA: You're late again.\nTOM: The trains stopped.\n"
             "ANNA: They always stop.\n(She turns off the light.)")
    assert detect_form(scene, "en") == "script"
    forms = load_taxonomy()
    background = Path(__file__).parents[1] / "src/coig_writer/data/checks/background_zh.jsonl"
    for row in load_rows(background):  # letters, notices, a screenplay, a modern poem...
        assert detect_form(row["text"], "zh") in forms.expected_forms(row["genre"]), row["title"]
    assert forms.expected_forms("classical_shi") == ("verse",)
    assert forms.expected_forms("散文") == ("prose",) and forms.expected_forms("crosstalk") == ("script",)
    assert forms.expected_forms("poetry") == ("verse",) and forms.expected_forms("nonsense") is None
    (r,) = run_checks(as_input(GOLD["gold-1"], genre=None), names=["form_mismatches_genre"])
    assert r.passed and r.value == "verse"  # no genre: nothing to compare


def test_instruction_ngrams_cover_every_layout_and_language_and_overrides(tmp_path: Path) -> None:
    grams = instruction_ngrams(4)
    assert tuple("数据标准") in grams  # the shared layout's system message
    assert tuple("反向推断") in grams  # legacy zh reconstruct_prompt
    assert ("give", "4", "5", "concrete") in grams  # English templates
    assert ("output", "only", "the", "instruction") in grams
    assert ("piece", "of", "infer", "the") in grams  # "a piece of $genre_name. Infer the ..."
    custom = "请务必使用鲜活的季节意象并保持克制的抒情基调"
    folder = tmp_path / "zh" / "shared"
    folder.mkdir(parents=True)
    (folder / "reasoning.yaml").write_text(
        f"name: reasoning\nversion: 9\noutput: text\nprefix: [prompt]\nuser: |\n  {custom}\n", "utf-8")
    assert instruction_overlap(custom)[0] < 0.3
    share, stretches = instruction_overlap(custom, 4, str(tmp_path))
    assert share == 1.0 and stretches[0] == custom
    cfg = ChecksConfig(template_dir=str(tmp_path))
    inp = as_input(GOLD["gold-1"], prompt=custom + "，写一首母爱的诗。")
    assert "prompt_parrots_instructions" in names(inp, cfg)
    assert "prompt_parrots_instructions" not in names(inp)


def test_english_inputs_get_english_checks_and_details() -> None:
    row = GOLD_EN["gold-en-1"]
    mention = as_input(row, prompt="Rewrite this poem by Robert Louis Stevenson as a two-stanza "
                                   "farewell with a firm rhyme and a glad tone.")
    (r,) = run_checks(mention, names=["prompt_mentions_source"])
    assert not r.passed and r.value == 2 and "this poem" in r.detail and "Stevenson" in r.detail
    wrapper = "\n\nFinal output: ```json\n{\"thinking\": \"...\"}\n```"
    wrapped = as_input(row, reasoning=row["thought"] + wrapper)
    assert "reasoning_not_prose" in names(wrapped)
    review = as_input(row, reasoning=REVIEW_EN)
    (r,) = run_checks(review, names=["reasoning_not_first_person"])
    assert not r.passed and r.value == 0.0 and "first person" in r.detail
    copied = as_input(row, prompt="Write two stanzas that begin: Under the wide and starry sky, dig "
                                  "the grave and let me lie.")
    assert "prompt_copies_text" in names(copied)
    vague = as_input(row, prompt="Write a poem.")
    assert "prompt_requirements" in names(vague)
    other = as_input(GOLD_EN["gold-en-3"], reasoning=row["thought"])
    assert {"reasoning_not_grounded", "reasoning_generic", "reasoning_ignores_prompt"} <= names(other)
    assert as_input(row).language == "en" and as_input(GOLD["gold-1"]).language == "zh"


def test_grounding_compares_with_the_given_other_texts() -> None:
    rows = list(GOLD.values())
    file_texts = tuple(r["answer"] for r in rows)  # the gate passes the file's texts
    for inp in cross_pairings(rows[:4])["reasoning_swap"]:
        with_file = CheckInput(inp.prompt, inp.reasoning, inp.text, others=file_texts)
        assert {"reasoning_not_grounded", "reasoning_generic"} <= names(with_file)
    as_list = CheckInput(rows[0]["query"], rows[0]["thought"], rows[0]["answer"], others=list(file_texts))
    assert as_list.others == file_texts and names(as_list) == set()
    own = grounding(rows[0]["thought"], rows[0]["answer"], rows[0]["query"], file_texts, "zh")
    assert own.own > 0.5 and own.margin > 0.4 and len(own.others) == len(rows) - 1
    assert "密密" in own.shared and "三春" in own.shared
    boiler = grounding(BOILERPLATE, rows[0]["answer"], rows[0]["query"], (), "zh")
    assert boiler.own < 0.15 and abs(boiler.margin) < 0.1


def test_the_cross_pairings_of_the_hand_written_triplets_are_caught() -> None:
    tallies = discrimination(list(GOLD.values())[:5])
    assert tallies["good"].caught == 0 and tallies["good"].total == 5
    assert tallies["reasoning_swap"].caught == tallies["reasoning_swap"].total == 20
    assert tallies["prompt_swap"].caught == 20
    assert tallies["reasoning_swap"].by_check["reasoning_generic"] == 20


# -- the first checks' report and reasons, for their callers ------------------------------------
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
    # a modern text against the packaged background: grounded, not boilerplate
    assert not {"reasoning_not_grounded", "reasoning_generic"} & names(CheckInput(PROMPT, GOOD, TEXT))
    assert {"reasoning_not_grounded", "reasoning_generic"} <= names(CheckInput(PROMPT, BOILERPLATE, TEXT))


def test_a_reasoning_that_pastes_the_text_is_flagged() -> None:
    pasted = "我的思路如下。\n" + TEXT + "\n以上就是文章。"
    problems = reasoning_problems(PROMPT, pasted, TEXT, ReasoningChecks())
    assert any(p.startswith("reasoning_copies_text: ") and "longest shared run" in p for p in problems)
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
    assert {p.split(":")[0] for p in problems} == {"reasoning_misses_requirements",
                                                   "reasoning_lacks_decisions",
                                                   "reasoning_length_ratio"}
    assert any("interpretation_planning" in p for p in problems)
    off = ReasoningChecks(min_requirement_coverage=None, min_decision_kinds=None,
                          min_length_ratio=None)
    assert reasoning_problems(PROMPT, thin, TEXT, off) == []
    # the newer reasoning checks are named too when asked for
    more = reasoning_problems(PROMPT, thin, TEXT, names=("reasoning_too_short", "reasoning_generic"))
    assert [p.split(":")[0] for p in more] == ["reasoning_too_short", "reasoning_generic"]


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
