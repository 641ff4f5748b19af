"""The concrete requirements of a prompt, and how many of them a reasoning takes up.

A prompt is cut into clauses at sentence and clause punctuation; list markers ("1.", "2、",
"（3）", "一、", "- ", "第二，") are removed first, so they never count as requirements, while a
number that is one ("不少于300字", "四句", "五言", "500 words") still does."""

from __future__ import annotations

import re

from .units import HAN, WORD

REQUIREMENT_MARKERS = ("要", "需", "必须", "应该", "应当", "请", "字", "不少于", "不超过", "语言",
                       "押韵", "结尾", "开头", "篇幅", "格式", "左右", "以内", "风格", "语气",
                       "采用", "使用", "包含", "围绕", "体现", "主题", "题为", "写一", "创作",
                       "描写", "表达", "不要", "不必", "避免", "别", "must", "should", "include",
                       "use ", "words", "style", "tone", "about", "write", "describe", "focus",
                       "set in", "theme", "no more", "at least", "avoid", "don't", "end with",
                       "begin with", "open with", "lines", "stanza", "rhyme")
_NUM = "一二三四五六七八九十两百千"
# a number that states a requirement: digits, or a Chinese numeral with a measure word
_COUNT = re.compile(rf"\d|[{_NUM}]+\s*[字句行段言节章首幕场篇联阕片则]")
_MARKER = re.compile(
    rf"(?:^|(?<=[\s：:；;。，,！!？?]))(?:"
    rf"[（(]\s*(?:\d{{1,2}}|[{_NUM}]{{1,3}})\s*[)）]"  # （3） (3) （三）
    rf"|(?:\d{{1,2}}|[{_NUM}]{{1,3}})\s*[.、．)）](?!\d)"  # 1. 2、 3) 一、
    rf"|第[{_NUM}\d]{{1,3}}\s*[，,、:：]"  # 第二，
    rf"|[-*•·]\s+)", re.M)
_SPLIT = re.compile(r"[，。；;,.!?！？：:\n]+")
_QUOTED = re.compile(r"[“「《\"]([^”」》\"]{2,40})[”」》\"]")
# instruction words that say nothing about the piece itself: dropped before matching
_FILLER = re.compile(r"请|以|为|写一[篇首个部段]|创作|要求|需要|必须|应该|应当|要|的|和|并|一下|"
                     r"如下|以下|几点|具体|注意|帮我|我想|希望|谢谢|感谢|麻烦")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are",
         "be", "it", "that", "this", "as", "by", "at", "your", "you", "please", "about", "write",
         "following", "requirements", "thanks", "thank"}


def strip_list_markers(prompt: str) -> str:
    """The prompt with its list markers replaced by clause breaks."""
    return _MARKER.sub("\n", prompt)


def units(phrase: str) -> set[str]:
    """Matching units of a phrase: Han character bigrams (instruction words dropped) and
    lower-case content words."""
    han = "".join(HAN.findall(_FILLER.sub(" ", phrase)))
    out = {han[i:i + 2] for i in range(len(han) - 1)} or set(han)
    out |= {w.lower() for w in WORD.findall(phrase) if w.lower() not in _STOP}
    return out


def _clauses(prompt: str) -> list[str]:
    parts = (c.strip(" “”「」《》\"'（）()") for c in _SPLIT.split(strip_list_markers(prompt)))
    return [c for c in parts if units(c)]


def _states_requirement(clause: str) -> bool:
    low = clause.lower()
    return any(m in low for m in REQUIREMENT_MARKERS) or bool(_COUNT.search(clause))


def requirement_clauses(prompt: str) -> list[str]:
    """Clauses of the prompt that state a requirement (a marker word or a count)."""
    return [c for c in _clauses(prompt) if _states_requirement(c)]


def _content(clause: str) -> int:
    """Content size of a clause: Han characters after instruction words, or 2 per English
    content word."""
    han = len(HAN.findall(_FILLER.sub("", clause)))
    return han + 2 * len([w for w in WORD.findall(clause) if w.lower() not in _STOP])


def requirement_count(prompt: str) -> tuple[int, list[str]]:
    """(number of concrete requirements, the requirements): the clauses, list items removed,
    that state a requirement or carry two or more content characters (an English content
    word); courtesy and lead-ins ("谢谢", "要求如下：") carry none."""
    items = [c for c in _clauses(prompt) if _states_requirement(c) or _content(c) >= 2]
    return len(items), items


def requirement_phrases(prompt: str) -> list[str]:
    """Quoted titles or themes, and the requirement clauses; all clauses when none states one."""
    quoted = [q.strip() for q in _QUOTED.findall(prompt)]
    return list(dict.fromkeys(quoted + (requirement_clauses(prompt) or _clauses(prompt))))


def requirement_coverage(prompt: str, reasoning: str) -> tuple[list[str], list[str]]:
    """(covered, missed) requirement phrases. A phrase is covered when a third of its units
    (Han bigrams, English words) recur in the reasoning, or half of its Han characters do:
    a plan paraphrases ("七言四句" for "七言绝句"), so exact echoes are not required."""
    have = units(reasoning)
    chars = set(HAN.findall(reasoning))
    covered, missed = [], []
    for p in requirement_phrases(prompt):
        us = units(p)
        han = set(HAN.findall(_FILLER.sub(" ", p)))
        ok = bool(us) and (len(us & have) / len(us) >= 1 / 3
                           or (len(han) >= 2 and len(han & chars) / len(han) >= 0.5))
        (covered if ok else missed).append(p)
    return covered, missed
