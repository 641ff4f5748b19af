"""Checks on the reasoning (data standard 2): long enough, prose, first person, grounded in its
own text and prompt rather than boilerplate, not pasting the text, taking up the prompt's
requirements and showing the paper's decision kinds."""

from __future__ import annotations

from .base import Check, CheckInput, Outcome, say
from .config import ChecksConfig
from .grounding import Grounding, grounding
from .prose import non_prose, voice
from .requirements import requirement_coverage
from .units import longest_shared_run, ngrams, squash

DECISION_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "interpretation_planning": {
        "zh": ("理解", "解读", "题意", "要求", "主题", "立意", "目标", "构思", "规划", "计划",
               "思路", "读者", "核心", "意图", "首先", "分析", "用户想", "用户要"),
        "en": ("understand", "interpret", "the prompt", "requirement", "theme", "goal", "plan",
               "intent", "audience", "first,", "core idea", "brief", "analy")},
    "structure_style": {
        "zh": ("结构", "段落", "开头", "结尾", "分为", "层次", "风格", "语言", "语气", "修辞",
               "句式", "格式", "篇幅", "字数", "押韵", "对仗", "韵律", "节奏", "文体", "用词",
               "格律", "排比", "叠字", "体式"),
        "en": ("structure", "paragraph", "opening", "ending", "section", "style", "tone",
               "voice", "rhetoric", "sentence", "format", "length", "rhyme", "rhythm", "word choice",
               "register")},
    "cultural_context": {
        "zh": ("文化", "传统", "历史", "典故", "时代", "背景", "习俗", "古人", "意象", "诗词",
               "朝", "民俗", "节日", "社会", "古代", "乐府", "词牌", "传说", "隐逸", "边塞", "佛",
               "文人"),
        "en": ("cultur", "tradition", "histor", "allusion", "era", "background", "custom",
               "heritage", "symbol", "context", "society", "idiom")},
    "narrative_development": {
        "zh": ("情节", "人物", "角色", "冲突", "发展", "推进", "转折", "高潮", "场景", "叙事",
               "情感", "铺垫", "悬念", "视角", "递进", "描写", "转句", "收束", "展开", "落点",
               "承接", "一步步"),
        "en": ("plot", "character", "conflict", "develop", "turn", "climax", "scene", "narrat",
               "emotion", "tension", "arc", "point of view", "build up", "foreshadow", "unfold",
               "the turn", "close on")},
    "revision": {
        "zh": ("修改", "调整", "检查", "润色", "改为", "删去", "反思", "不够", "改进", "优化",
               "再看", "确认", "修订", "避免", "改用", "删掉", "考虑过", "想过", "放弃", "通读",
               "再读", "原本", "本来想", "起初"),
        "en": ("revise", "revision", "adjust", "check", "polish", "rewrite", "instead", "refine",
               "improve", "reconsider", "double-check", "on reflection", "avoid", "considered",
               "dropped", "at first", "cut ")},
}


def decision_kinds(reasoning: str) -> dict[str, list[str]]:
    """Per decision kind, the keywords (zh and en) found in the reasoning."""
    low = reasoning.lower()
    return {kind: [w for lang in ("zh", "en") for w in words[lang] if w in low]
            for kind, words in DECISION_KINDS.items()}


def ngram_overlap(reasoning: str, text: str, n: int) -> tuple[float, float]:
    """(share of the reasoning's n-grams found in the text, share of the text's found in the
    reasoning), over whitespace-free character n-grams."""
    r, t = ngrams(squash(reasoning), n), ngrams(squash(text), n)
    if not r or not t:
        return 0.0, 0.0
    common = len(r & t)
    return common / len(r), common / len(t)


def _too_short(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    n, least = len(inp.reasoning.strip()), cfg.min_reasoning_chars or 0
    return Outcome(n >= least, n, say(
        inp.language, f"思考过程只有 {n} 字（至少 {least}）：请把从指令到文章的每个决定写完整。"
        if n < least else f"{n} 字",
        f"the reasoning has {n} characters (at least {least}): write out every decision from "
        "the prompt to the text." if n < least else f"{n} characters"))


def _copies_text(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    run = longest_shared_run(squash(inp.reasoning), squash(inp.text))
    share = max(ngram_overlap(inp.reasoning, inp.text, cfg.ngram))
    bad_run = cfg.max_copy_run is not None and run > cfg.max_copy_run
    bad_share = cfg.max_ngram_overlap is not None and share > cfg.max_ngram_overlap
    measured = f"longest shared run {run} chars, {cfg.ngram}-gram overlap {share:.2f}"
    if not (bad_run or bad_share):
        return Outcome(True, run, measured)
    limits = (f"> {cfg.max_copy_run}" if bad_run else "") + (
        f"{'; ' if bad_run else ''}overlap > {cfg.max_ngram_overlap}" if bad_share else "")
    return Outcome(False, run, say(
        inp.language, f"思考过程重抄了文章（{measured}，{limits}）：只引用短语，写决定和理由，不要照抄全文。",
        f"the reasoning pastes the text ({measured}, {limits}): quote short phrases only and "
        "write the decisions and their reasons."))


def _misses_requirements(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    covered, missed = requirement_coverage(inp.prompt, inp.reasoning)
    n = len(covered) + len(missed)
    share = len(covered) / n if n else 1.0
    least = cfg.min_requirement_coverage or 0.0
    if share >= least:
        return Outcome(True, round(share, 3), f"covers {len(covered)}/{n}")
    listed = "; ".join(missed[:3])
    return Outcome(False, round(share, 3), say(
        inp.language, f"思考过程只回应了指令 {len(covered)}/{n} 条要求（{share:.2f} < {least}）：请逐条"
        f"说明如何落实，如：{listed}",
        f"covers {len(covered)}/{n} ({share:.2f}) < {least}; say how each requirement is met, "
        f"e.g. missed: {listed}"))


def _lacks_decisions(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    kinds = decision_kinds(inp.reasoning)
    present = sum(bool(v) for v in kinds.values())
    least = cfg.min_decision_kinds or 0
    if present >= least:
        return Outcome(True, present, f"{present}/5 kinds")
    absent = ", ".join(k for k, v in kinds.items() if not v)
    return Outcome(False, present, say(
        inp.language, f"思考过程只涉及 {present}/5 类决定（至少 {least}）：请补上缺少的方面（{absent}）。",
        f"{present}/5 kinds < {least}; absent: {absent}"))


def _length_ratio(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    ratio = len(inp.reasoning) / len(inp.text) if inp.text else float("inf")
    lo, hi = cfg.min_length_ratio, cfg.max_length_ratio
    ok = (lo is None or ratio >= lo) and (hi is None or ratio <= hi)
    return Outcome(ok, round(ratio, 3), f"{ratio:.2f}" if ok else f"{ratio:.2f} outside [{lo}, {hi}]")


def _not_prose(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    found = non_prose(inp.reasoning)
    limit = cfg.max_non_prose or 0
    if len(found) <= limit:
        return Outcome(True, len(found), "prose")
    kinds = ", ".join(found)
    return Outcome(False, len(found), say(
        inp.language, f"思考过程不是连贯的散文（{kinds}）：请写成第一人称的内心独白，一段段完整的句子，不要 "
        "JSON、代码块、标题提纲或“最终输出”之类的包装。",
        f"the reasoning is not prose ({kinds}): write it as a first-person inner monologue in "
        "full sentences, without JSON, code fences, bare headings or a 'Final output' wrapper."))


def _not_first_person(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    mine, review = voice(inp.reasoning, inp.language)
    share = mine / (mine + review) if mine else 0.0
    least = cfg.min_first_person or 0.0
    measured = f"first-person {mine}, review {review}"
    if share >= least:
        return Outcome(True, round(share, 3), measured)
    return Outcome(False, round(share, 3), say(
        inp.language, f"思考过程不是写作者的第一人称（{measured}，比例 {share:.2f} < {least}）：请以写作助手"
        "的口吻写“用户想要……我打算……”，不要写成对作品的评论（“作者通过……表达了……”）。",
        f"the reasoning is not in the writer's first person ({measured}, share {share:.2f} < "
        f"{least}): write as the assistant planning the piece ('the user wants... I will...'), "
        "not as a critic reviewing it ('the poet depicts...')."))


def _ground(inp: CheckInput) -> Grounding:
    return grounding(inp.reasoning, inp.text, inp.prompt, inp.others, inp.language)


def _not_grounded(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    g = _ground(inp)
    least = cfg.min_grounding or 0.0
    shared = "、".join(g.shared) if inp.language == "zh" else ", ".join(g.shared)
    measured = f"{g.own:.2f}" + (f" ({shared})" if shared else "")
    if g.own >= least:
        return Outcome(True, round(g.own, 3), measured)
    return Outcome(False, round(g.own, 3), say(
        inp.language, f"思考过程与这篇文章的具体内容关联太少（加权覆盖 {measured} < {least}）：请具体写到"
        "文章里实际用到的意象、句子、转折和收束，以及为什么这样写。",
        f"the reasoning uses too little of this text's content (weighted coverage {measured} < "
        f"{least}): name the images, lines, turns and ending the text actually has, and why."))


def _ignores_prompt(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    g = _ground(inp)
    least = cfg.min_prompt_grounding or 0.0
    if g.prompt >= least:
        return Outcome(True, round(g.prompt, 3), f"{g.prompt:.2f}")
    return Outcome(False, round(g.prompt, 3), say(
        inp.language, f"思考过程很少回应这条写作指令（指令内容的加权覆盖 {g.prompt:.2f} < {least}）：请从读懂"
        "指令写起，说明每条要求怎样落到文章里。",
        f"the reasoning takes up little of this prompt (weighted share of its content "
        f"{g.prompt:.2f} < {least}): start from what the prompt asks and say how each "
        "requirement shapes the text."))


def _generic(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    g = _ground(inp)
    least = cfg.min_grounding_margin or 0.0
    measured = f"own {g.own:.2f} vs others {g.baseline:.2f}"
    if g.margin >= least:
        return Outcome(True, round(g.margin, 3), measured)
    return Outcome(False, round(g.margin, 3), say(
        inp.language, f"思考过程是套话，换一篇文章也同样适用（{measured}，差值 {g.margin:.2f} < {least}）："
        "请写只属于这篇文章的决定：它的题材、意象、结构安排和取舍。",
        f"the reasoning is boilerplate that would fit any other text as well ({measured}, margin "
        f"{g.margin:.2f} < {least}): write the decisions only this text has: its subject, "
        "images, structure and the choices made."))


REASONING_CHECKS = (
    Check("reasoning_too_short", "reasoning", ("min_reasoning_chars",), _too_short,
          "characters of the reasoning"),
    Check("reasoning_not_prose", "reasoning", ("max_non_prose",), _not_prose,
          "kinds of non-prose layout: JSON object or array, code fence, '最终输出'/'Final "
          "output' wrapper, headings with no sentence under them, outline of fragments"),
    Check("reasoning_not_first_person", "reasoning", ("min_first_person",), _not_first_person,
          "first-person markers / (first-person + third-person review markers)"),
    Check("reasoning_not_grounded", "reasoning", ("min_grounding",), _not_grounded,
          "tf-idf-weighted share of the text's profile (its 24 heaviest Han characters and 24 "
          "bigrams, or 48 content words) found in the reasoning; units every text shares weigh ~0"),
    Check("reasoning_ignores_prompt", "reasoning", ("min_prompt_grounding",), _ignores_prompt,
          "idf-weighted share of the prompt's content units found in the reasoning (a "
          "reasoning written for another prompt, or none)"),
    Check("reasoning_generic", "reasoning", ("min_grounding_margin",), _generic,
          "the reasoning_not_grounded share for its own text minus its mean over the other "
          "texts (the run's, the file's, or the packaged background)"),
    Check("reasoning_copies_text", "reasoning", ("max_copy_run", "max_ngram_overlap"), _copies_text,
          "longest character run shared with the text; share of 8-grams shared either way"),
    Check("reasoning_misses_requirements", "reasoning", ("min_requirement_coverage",),
          _misses_requirements, "share of the prompt's requirement phrases echoed or planned"),
    Check("reasoning_lacks_decisions", "reasoning", ("min_decision_kinds",), _lacks_decisions,
          "decision kinds of the paper (interpretation and planning, structure and style, "
          "cultural context, narrative development, revision) shown, by keywords"),
    Check("reasoning_length_ratio", "reasoning", ("min_length_ratio", "max_length_ratio"),
          _length_ratio, "reasoning characters / text characters"),
)
