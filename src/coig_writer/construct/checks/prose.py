"""What keeps a reasoning from being prose, and whose voice it is in.

- Non-prose: a JSON object or array (whole, inline, or as `"key": value` lines), a code fence,
  a "最终输出：" / "Final output:" wrapper, headings with no sentence under them, or an outline
  of short `key: value` fragments.
- Voice: first-person markers ("我", "I", "my", "let me") against the markers of a third-person
  review ("作者", "诗人", "全诗", "表达了", "the author", "the poem", "depicts")."""

from __future__ import annotations

import json
import re

from .units import HAN, WORD

_FENCE = re.compile(r"```|~~~")
_WRAPPER = re.compile(r"(最终输出|最终答案|最终结果|输出结果|输出如下|以下是输出|final output|final answer"
                      r"|json output)\s*[:：]?", re.I)
_KEY_LINE = re.compile(r"^\s*\"[^\"\n]{1,40}\"\s*:\s*", re.M)
_INLINE_OBJECT = re.compile(r"[{\[]\s*\"[^\"\n]{1,40}\"\s*:")
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_BOLD_LINE = re.compile(r"^\s*(?:[-*•]\s*)?\*\*[^*\n]{1,30}\*\*\s*[:：]?\s*$")
_NUMBERED_TITLE = re.compile(r"^\s*(?:[（(]?[一二三四五六七八九十\d]{1,2}[)）.、．]"
                             r"|第[一二三四五六七八九十]步)\s*[^。！？.!?，,；;]{1,16}[:：]?\s*$")
_COLON_TITLE = re.compile(r"^\s*[^。！？.!?，,；;:：]{1,14}[:：]\s*$")
_FRAGMENT = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.、])?\s*[^：:\n]{1,12}[：:]\s*\S[^。！？.!?\n]{0,24}$")

_FP_ZH = re.compile(r"我|咱")
_FP_EN = re.compile(r"\b(?:I|I'm|I'll|I've|I'd|me|my|myself|mine|we|we'll|let's|let me)\b")
_REVIEW_ZH = re.compile(r"作者|诗人|词人|笔者|该诗|此诗|本诗|该词|该文|本文|全文|这首诗的|"
                        r"(?:表达|体现|展现|抒发|描绘|刻画|营造|揭示|运用|塑造|勾勒|渲染|表现|反映)了")
_REVIEW_EN = re.compile(r"\b(?:the (?:author|poet|writer|speaker|narrator)|this poem|the poem's|"
                        r"this piece|the text|(?:he|she) (?:uses|writes|describes)|expresses|"
                        r"depicts|conveys|portrays|evokes|illustrates|reflects|employs)\b", re.I)


def _is_json(text: str) -> bool:
    s = text.strip()
    if s[:1] in "{[":
        try:
            json.loads(s)
            return True
        except ValueError:  # cut off or loosely written: a quoted key still gives it away
            return bool(re.search(r"\"\s*:", s))
    return len(_KEY_LINE.findall(s)) >= 2 or bool(_INLINE_OBJECT.search(s))


def _is_heading(line: str) -> bool:
    return bool(_MD_HEADING.match(line) or _BOLD_LINE.match(line) or _NUMBERED_TITLE.match(line)
                or _COLON_TITLE.match(line))


def _sentence(line: str) -> bool:
    return len(HAN.findall(line)) + 4 * len(WORD.findall(line)) >= 10


def empty_headings(text: str) -> list[str]:
    """Headings followed by no sentence before the next heading or the end."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = []
    for i, ln in enumerate(lines):
        if not _is_heading(ln):
            continue
        body = []
        for nxt in lines[i + 1:]:
            if _is_heading(nxt):
                break
            body.append(nxt)
        if not any(_sentence(b) for b in body):
            out.append(ln.strip())
    return out


def non_prose(text: str) -> list[str]:
    """The kinds of non-prose layout found, in words."""
    found = []
    if _is_json(text):
        found.append("JSON")
    if _FENCE.search(text):
        found.append("code fence")
    if m := _WRAPPER.search(text):
        found.append(f"wrapper '{m.group(0).strip()}'")
    if heads := empty_headings(text):
        found.append(f"{len(heads)} heading(s) with nothing under them ('{heads[0][:20]}')")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    fragments = sum(bool(_FRAGMENT.match(ln)) for ln in lines)
    if fragments >= 3 and fragments * 2 >= len(lines):
        found.append(f"an outline of {fragments} 'key: value' fragments")
    return found


def voice(text: str, lang: str) -> tuple[int, int]:
    """(first-person markers, third-person review markers)."""
    if lang == "zh":
        return len(_FP_ZH.findall(text)), len(_REVIEW_ZH.findall(text))
    return len(_FP_EN.findall(text)), len(_REVIEW_EN.findall(text))
