"""Checks on the prompt: copying the text, parroting the annotation instructions, naming the
source, and the number of concrete requirements (data standard 1)."""

from __future__ import annotations

import re

from .base import Check, CheckInput, Outcome, say
from .config import ChecksConfig
from .form import detect_form
from .instructions import instruction_overlap
from .requirements import requirement_count
from .units import tokens

_CLAUSE = re.compile(r"[，。；;,.!?！？、：:\n()（）“”\"]+")
_SOURCE_ZH = ("这篇文章", "这篇作品", "该文章", "本文", "原文", "原作", "原诗", "原词", "原著",
              "上文", "上面的文章", "以上文章", "所给文章", "这段文字", "文章作者", "作者本人",
              "该作者", "这位作者", "模仿作者", "作者的风格", "作者的口吻")
_SOURCE_EN = re.compile(
    r"\b(?:(?:this|the above|the given|the original|the source|the following) "
    r"(?:article|text|poem|piece|passage|essay|story)|the original|the author|the text above)\b",
    re.I)


def _join(toks: list[str]) -> str:
    return "".join(toks) if all(len(t) == 1 for t in toks) else " ".join(toks)


def copied_run(prompt: str, text: str) -> list[str]:
    """The longest run of tokens (Han characters or words; punctuation ignored) the prompt
    repeats from the text."""
    a, b = tokens(prompt), tokens(text)
    hay = "\x00" + "\x00".join(b) + "\x00"
    best: list[str] = []
    for i in range(len(a)):
        j = i + len(best) + 1
        while j <= len(a) and "\x00" + "\x00".join(a[i:j]) + "\x00" in hay:
            best = a[i:j]
            j += 1
    return best


def copied_clauses(prompt: str, text: str, shortest: int) -> list[str]:
    """Whole clauses (or lines) of the text, `shortest` tokens or longer, that the prompt
    repeats verbatim (meant for verse, where a line is the unit: in prose a four-character
    clause is as often an idiom anyone may use)."""
    mine = "\x00" + "\x00".join(tokens(prompt)) + "\x00"
    out = []
    for clause in _CLAUSE.split(text):
        toks = tokens(clause)
        if len(toks) >= shortest and "\x00" + "\x00".join(toks) + "\x00" in mine:
            out.append(_join(toks))
    return list(dict.fromkeys(out))


def copied_piece(prompt: str, text: str, cfg: ChecksConfig | None = None, lang: str | None = None
                 ) -> tuple[str | None, int, int | None]:
    """(what the prompt copies from the text or None, the longest shared run in tokens, the
    run limit): a run longer than the limit (Han characters, or words for English), or a
    whole line or clause of a verse text."""
    cfg = cfg or ChecksConfig()
    inp = CheckInput(prompt, "", text, lang)
    limit = cfg.max_prompt_copy_run if inp.language == "zh" else cfg.max_prompt_copy_words
    run = copied_run(prompt, text)
    verse = detect_form(text, inp.language) == "verse"
    clauses = copied_clauses(prompt, text, cfg.min_copied_clause) if verse else []
    if clauses:
        return clauses[0], len(run), limit
    return (_join(run) if limit is not None and len(run) > limit else None), len(run), limit


def copied_span(prompt: str, text: str, cfg: ChecksConfig | None = None) -> str | None:
    """What the prompt copies from the text, or None (the pipeline's former `copied_span`)."""
    return copied_piece(prompt, text, cfg)[0]


def _copies_text(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    piece, run, limit = copied_piece(inp.prompt, inp.text, cfg, inp.language)
    if piece is None:
        return Outcome(True, run, say(inp.language, f"最长与原文相同的片段 {run} 字",
                                      f"longest run shared with the text: {run} words"))
    return Outcome(False, run, say(
        inp.language,
        f"写作指令照抄了文章原句（如“{piece}”，最长相同片段 {run} 字，上限 {limit}）：请改用"
        "自己的话概括要求，不要引用文章的句子。",
        f"the prompt copies the text verbatim (e.g. \"{piece}\", a run of {run} words, at "
        f"most {limit}): state the requirement in your own words instead of quoting the text."))


def _parrots(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    share, stretches = instruction_overlap(inp.prompt, cfg.instruction_ngram, cfg.template_dir)
    limit = cfg.max_instruction_overlap
    assert limit is not None
    if share <= limit:
        return Outcome(True, round(share, 3), say(inp.language, f"与标注说明重合 {share:.0%}",
                                                  f"overlap with the instructions: {share:.0%}"))
    quoted = "；".join(stretches) if inp.language == "zh" else "; ".join(stretches)
    return Outcome(False, round(share, 3), say(
        inp.language,
        f"写作指令复述了标注说明（{share:.0%} 的 {cfg.instruction_ngram} 字片段出自模板的数据标准或"
        f"任务说明，上限 {limit:.0%}；如“{quoted}”）：请以用户的口吻，针对这篇作品的主题、体裁、"
        "意象和基调提出具体要求，不要复述标注规则。",
        f"the prompt repeats the annotation instructions ({share:.0%} of its "
        f"{cfg.instruction_ngram}-word n-grams come from the templates' data standards or task "
        f"text, at most {limit:.0%}; e.g. \"{quoted}\"): ask, in a user's voice, for this "
        "piece's theme, form, imagery and tone instead of restating the annotation rules."))


def _names(title: str | None, author: str | None, lang: str) -> list[str]:
    out = []
    if author and len(author.strip()) >= 2:
        out.append(author.strip())
        if lang == "en" and len(author.split()) > 1 and len(author.split()[-1]) >= 4:
            out.append(author.split()[-1])
    if title:
        parts = [p.strip() for p in re.split(r"[·・]", title)]
        for p in [title.strip(), *parts[1:]]:  # before "·": a tune or book name, a form
            long_enough = len(p) >= 2 if lang == "zh" else len(p.split()) >= 2
            if long_enough and not p.isdigit():
                out.append(p)
    return list(dict.fromkeys(out))


def source_mentions(inp: CheckInput) -> list[str]:
    """What in the prompt names the source: '这篇文章', '原文', 'this article', the author, the
    title."""
    low = inp.prompt.lower()
    found = [w for w in _SOURCE_ZH if w in inp.prompt]
    found += [m.group(0) for m in _SOURCE_EN.finditer(inp.prompt)]
    for name in _names(inp.title, inp.author, inp.language):  # a surname inside the full name once
        if name.lower() in low and not any(name.lower() in f.lower() for f in found):
            found.append(name)
    return list(dict.fromkeys(found))


def _mentions_source(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    found = source_mentions(inp)
    limit = cfg.max_source_mentions or 0
    if len(found) <= limit:
        return Outcome(True, len(found), say(inp.language, "没有提及原文或作者",
                                             "names neither the source nor its author"))
    names = "、".join(found) if inp.language == "zh" else ", ".join(found)
    return Outcome(False, len(found), say(
        inp.language,
        f"写作指令提到了原文或作者（{names}）：用户下指令时还没有这篇文章，请直接提出写作要求，"
        "不提“这篇文章”、原文、标题或作者。",
        f"the prompt names the source ({names}): a user asking for a text has no article yet; "
        "ask for the writing directly, without 'this article', the original, its title or "
        "author."))


def _requirements(inp: CheckInput, cfg: ChecksConfig) -> Outcome:
    n, _ = requirement_count(inp.prompt)
    lo, hi = cfg.min_requirements, cfg.max_requirements
    if (lo is None or n >= lo) and (hi is None or n <= hi):
        return Outcome(True, n, say(inp.language, f"{n} 条具体要求", f"{n} concrete requirements"))
    few = lo is not None and n < lo
    return Outcome(False, n, say(
        inp.language,
        f"写作指令有 {n} 条具体要求（应在 {lo}-{hi} 条之间）："
        + ("请补充体裁、篇幅、视角、意象或情感基调方面的具体要求。" if few else
           "要求过多，把内容规定死了；请只保留最关键的几条，给创作留出空间。"),
        f"the prompt states {n} concrete requirements (expected {lo}-{hi}): "
        + ("add concrete requirements on form, length, point of view, imagery or tone." if few
           else "too many, they dictate the content; keep the few that matter and leave room.")))


PROMPT_CHECKS = (
    Check("prompt_copies_text", "prompt", ("max_prompt_copy_run", "max_prompt_copy_words"),
          _copies_text, "longest run of the text's characters (words, for English) the prompt "
          "repeats, punctuation ignored; or a whole line or clause of a verse text repeated"),
    Check("prompt_parrots_instructions", "prompt", ("max_instruction_overlap",), _parrots,
          "share of the prompt's token n-grams (4 Han characters or 4 words) found in the "
          "construction templates' system messages and stage instructions"),
    Check("prompt_mentions_source", "prompt", ("max_source_mentions",), _mentions_source,
          "mentions of the source: '这篇文章', '原文', 'this article', 'the original', the "
          "author's name, the title"),
    Check("prompt_requirements", "prompt", ("min_requirements", "max_requirements"), _requirements,
          "number of concrete requirements (list markers are not requirements)"),
)
