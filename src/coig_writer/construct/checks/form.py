"""The form of a text without an LLM: line-structured verse, prose, or script dialogue.

- script: at least three lines open with a speaker label ("甲：", "张三：", "HAMLET.", "NURSE:")
  from two or more speakers and make up a third of the lines, or scene headings ("第一场",
  "INT.", "EXT.") and stage directions frame speaker lines.
- verse: Chinese clauses of one regular length (4-7 characters: shi, four-character verse), a
  repeated clause pattern line after line (ci, couplets), or three or more short lines, none of
  them a paragraph, that mostly do not end a sentence (modern verse); English: four or more
  short lines (median under 60 characters, none a paragraph) that are not prose wrapped at a
  fixed width.
- prose: everything else.
Annotations in brackets ("(腾 一作：螣)") are ignored."""

from __future__ import annotations

import re
import statistics
from collections import Counter

from .units import HAN

FORMS = ("verse", "prose", "script")
_NOTE = re.compile(r"[(（][^()（）\n]{0,30}[)）]")
_CLAUSE = re.compile(r"[，。；！？、,.;!?:：…—]+")
_SPEAKER_ZH = re.compile(r"^\s*([\u3400-\u9fffA-Za-z甲乙丙丁]{1,6})\s*[：:]\s*\S")
_SPEAKER_EN = re.compile(r"^\s*([A-Z][A-Z .'-]{1,24}|[A-Z][a-z]+)\s*[:.]\s+\S")
_SCENE = re.compile(r"^\s*(第[一二三四五六七八九十\d]+[场幕]|(INT|EXT)\.|SCENE\b|ACT\b|场景[：:])",
                    re.M)
_SENTENCE_END = "。！？!?…”\"'』」."


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in _NOTE.sub("", text).splitlines() if ln.strip()]


def _is_script(lines: list[str], lang: str) -> bool:
    pattern = _SPEAKER_ZH if lang == "zh" else _SPEAKER_EN
    speakers = [m.group(1).strip() for ln in lines if (m := pattern.match(ln))]
    labelled = len(speakers) >= 3 and len(set(speakers)) >= 2
    if labelled and len(speakers) * 3 >= len(lines):
        return True
    return labelled and bool(_SCENE.search("\n".join(lines)))


def _han_len(s: str) -> int:
    return len(HAN.findall(s))


def _is_zh_verse(lines: list[str]) -> bool:
    clauses = [c for ln in lines for c in _CLAUSE.split(ln) if _han_len(c)]
    lengths = [_han_len(c) for c in clauses]
    if lengths:
        common, count = Counter(lengths).most_common(1)[0]
        if common in (5, 7) and count == len(lengths) >= 2:  # a couplet of shi on one line
            return True
        regular = 4 <= common <= 7 and count >= 0.85 * len(lengths) >= 3.4
        if regular and (len(lines) >= 2 or common in (5, 7)):
            return True
    if len(lines) >= 2:  # ci: every line repeats one clause pattern
        patterns = [tuple(_han_len(c) for c in _CLAUSE.split(ln) if _han_len(c)) for ln in lines]
        if len(set(patterns)) == 1 and patterns[0] and max(patterns[0]) <= 11:
            return True
    if len(lines) >= 3:  # modern verse: short lines, none a paragraph, most not ending a sentence
        lengths = [_han_len(ln) for ln in lines]
        short = statistics.median(lengths) <= 20 and max(lengths) <= 40
        open_ended = sum(not ln.endswith(tuple(_SENTENCE_END)) for ln in lines) >= 0.5 * len(lines)
        quoted = sum(ln.startswith(("“", "「", '"')) for ln in lines) > 0.3 * len(lines)
        return short and open_ended and not quoted
    return False


def _is_en_verse(lines: list[str]) -> bool:
    if len(lines) < 4:
        return False
    lengths = [len(ln) for ln in lines]
    median = statistics.median(lengths)
    if median >= 60 or max(lengths) > 3 * median + 20:  # long lines, or a paragraph among them
        return False
    capitals = sum(ln[:1].isupper() or not ln[:1].isalpha() for ln in lines) >= 0.8 * len(lines)
    # prose hard-wrapped at a width: most lines end near the longest and start in lower case
    wrapped = sum(n >= max(lengths) - 6 for n in lengths) >= 0.6 * len(lines)
    return capitals or not wrapped


def detect_form(text: str, lang: str) -> str:
    """`verse`, `prose` or `script`."""
    lines = _lines(text)
    if _is_script(lines, lang):
        return "script"
    verse = _is_zh_verse(lines) if lang == "zh" else _is_en_verse(lines)
    return "verse" if verse else "prose"
