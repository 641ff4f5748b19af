"""Reasoning checks without an LLM, each failure a named reason.

- `reasoning_copies_text`: the reasoning pastes the text (longest shared character run, and the
  share of character n-grams shared with the text, either way round).
- `reasoning_misses_requirements`: too few of the prompt's concrete requirement phrases are
  echoed or planned in the reasoning.
- `reasoning_lacks_decisions`: too few of the paper's five decision kinds (interpretation and
  planning, structure and style, cultural context, narrative development, revision) show up,
  by a keyword and heading detector in Chinese and English.
- `reasoning_length_ratio`: reasoning length / text length outside the configured band.

Defaults are lenient: they catch pasted or empty reasoning, not style.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

DECISION_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "interpretation_planning": {
        "zh": ("理解", "解读", "题意", "要求", "主题", "立意", "目标", "构思", "规划", "计划",
               "思路", "读者", "核心", "意图", "首先", "分析"),
        "en": ("understand", "interpret", "the prompt", "requirement", "theme", "goal", "plan",
               "intent", "audience", "first,", "core idea", "brief", "analy")},
    "structure_style": {
        "zh": ("结构", "段落", "开头", "结尾", "分为", "层次", "风格", "语言", "语气", "修辞",
               "句式", "格式", "篇幅", "字数", "押韵", "对仗", "韵律", "节奏", "文体", "用词"),
        "en": ("structure", "paragraph", "opening", "ending", "section", "style", "tone",
               "voice", "rhetoric", "sentence", "format", "length", "rhyme", "rhythm", "word choice",
               "register")},
    "cultural_context": {
        "zh": ("文化", "传统", "历史", "典故", "时代", "背景", "习俗", "古人", "意象", "诗词",
               "朝", "民俗", "节日", "社会"),
        "en": ("cultur", "tradition", "histor", "allusion", "era", "background", "custom",
               "heritage", "symbol", "context", "society", "idiom")},
    "narrative_development": {
        "zh": ("情节", "人物", "角色", "冲突", "发展", "推进", "转折", "高潮", "场景", "叙事",
               "情感", "铺垫", "悬念", "视角", "递进", "描写"),
        "en": ("plot", "character", "conflict", "develop", "turn", "climax", "scene", "narrat",
               "emotion", "tension", "arc", "point of view", "build up", "foreshadow")},
    "revision": {
        "zh": ("修改", "调整", "检查", "润色", "改为", "删去", "反思", "不够", "改进", "优化",
               "再看", "确认", "修订", "避免"),
        "en": ("revise", "revision", "adjust", "check", "polish", "rewrite", "instead", "refine",
               "improve", "reconsider", "double-check", "on reflection", "avoid")},
}

REQUIREMENT_MARKERS = ("要", "需", "必须", "应该", "应当", "请", "字", "不少于", "不超过", "语言",
                       "押韵", "结尾", "开头", "篇幅", "格式",
                       "左右", "以内", "风格", "语气", "采用", "使用", "包含", "围绕", "体现",
                       "主题", "题为", "写一", "创作", "描写", "表达", "must", "should",
                       "include", "use ", "words", "style", "tone", "about", "write", "describe",
                       "focus", "set in", "theme", "no more", "at least")
_SPLIT = re.compile(r"[，。；;,.!?！？、：:\n]+")
_QUOTED = re.compile(r"[“「《\"]([^”」》\"]{2,40})[”」》\"]")
# instruction words that say nothing about the piece itself: dropped before matching
_FILLER = re.compile(r"请|以|为|写一[篇首个部段]|创作|要求|需要|必须|应该|应当|要|的|和|并|一下")
_WORD = re.compile(r"[A-Za-z]+|\d+")
_HAN = re.compile(r"[\u3400-\u9fff]")
_STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "with", "is", "are",
         "be", "it", "that", "this", "as", "by", "at", "your", "you", "please", "about", "write"}


class ReasoningChecks(BaseModel):
    """Thresholds of the LLM-free reasoning checks (lenient defaults; None turns one off)."""

    max_copy_run: int | None = Field(80, description="longest character run shared with the "
                                                     "text, at most")
    ngram: int = Field(8, ge=2, description="character n-gram size for the overlap ratio")
    max_ngram_overlap: float | None = Field(0.5, description="share of the reasoning's (or the "
                                            "text's) n-grams found in the other, at most")
    min_requirement_coverage: float | None = Field(0.3, description="share of the prompt's "
                                                   "requirement phrases echoed or planned")
    min_decision_kinds: int | None = Field(2, description="of the five decision kinds, at least")
    min_length_ratio: float | None = Field(0.02, description="reasoning chars / text chars, "
                                           "at least")
    max_length_ratio: float | None = Field(None, description="at most (off by default: a "
                                           "20-character poem may well need 1,000 characters "
                                           "of reasoning)")


def longest_shared_run(a: str, b: str) -> int:
    """Length of the longest common substring, via a suffix automaton over `b` (linear time)."""
    if not a or not b:
        return 0
    link, length, trans = [-1], [0], [{}]
    last = 0
    for ch in b:
        cur = len(length)
        length.append(length[last] + 1)
        link.append(-1)
        trans.append({})
        p = last
        while p != -1 and ch not in trans[p]:
            trans[p][ch] = cur
            p = link[p]
        if p == -1:
            link[cur] = 0
        else:
            q = trans[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                length.append(length[p] + 1)
                link.append(link[q])
                trans.append(dict(trans[q]))
                while p != -1 and trans[p].get(ch) == q:
                    trans[p][ch] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        last = cur
    best = state = run = 0
    for ch in a:
        while state and ch not in trans[state]:
            state = link[state]
            run = length[state]
        if ch in trans[state]:
            state = trans[state][ch]
            run += 1
        else:
            state = run = 0
        best = max(best, run)
    return best


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _ngrams(text: str, n: int) -> set[str]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def ngram_overlap(reasoning: str, text: str, n: int) -> tuple[float, float]:
    """(share of the reasoning's n-grams found in the text, share of the text's found in the
    reasoning), over whitespace-free character n-grams."""
    r, t = _ngrams(_squash(reasoning), n), _ngrams(_squash(text), n)
    if not r or not t:
        return 0.0, 0.0
    common = len(r & t)
    return common / len(r), common / len(t)


def _units(phrase: str) -> set[str]:
    """Matching units of a phrase: Han character bigrams (instruction words dropped) and
    lower-case content words."""
    han = "".join(_HAN.findall(_FILLER.sub(" ", phrase)))
    units = {han[i:i + 2] for i in range(len(han) - 1)} or set(han)
    units |= {w.lower() for w in _WORD.findall(phrase) if w.lower() not in _STOP}
    return units


def requirement_phrases(prompt: str) -> list[str]:
    """Quoted titles or themes, and clauses of the prompt that state a requirement (a marker
    word or a number); all clauses when none does."""
    quoted = [q.strip() for q in _QUOTED.findall(prompt)]
    clauses = [c.strip(" “”「」《》\"'") for c in _SPLIT.split(prompt)]
    clauses = [c for c in clauses if _units(c)]
    marked = [c for c in clauses
              if any(m in c.lower() for m in REQUIREMENT_MARKERS) or re.search(r"\d", c)]
    return list(dict.fromkeys(quoted + (marked or clauses)))


def requirement_coverage(prompt: str, reasoning: str) -> tuple[list[str], list[str]]:
    """(covered, missed) requirement phrases. A phrase is covered when a third of its units
    (Han bigrams, English words) recur in the reasoning, or half of its Han characters do:
    a plan paraphrases ("七言四句" for "七言绝句"), so exact echoes are not required."""
    have = _units(reasoning)
    chars = set(_HAN.findall(reasoning))
    covered, missed = [], []
    for p in requirement_phrases(prompt):
        units = _units(p)
        han = set(_HAN.findall(_FILLER.sub(" ", p)))
        ok = bool(units) and (len(units & have) / len(units) >= 1 / 3
                              or (len(han) >= 2 and len(han & chars) / len(han) >= 0.5))
        (covered if ok else missed).append(p)
    return covered, missed


def decision_kinds(reasoning: str) -> dict[str, list[str]]:
    """Per decision kind, the keywords (zh and en) found in the reasoning."""
    low = reasoning.lower()
    return {kind: [w for lang in ("zh", "en") for w in words[lang] if w in low]
            for kind, words in DECISION_KINDS.items()}


def reasoning_report(prompt: str, reasoning: str, text: str, cfg: ReasoningChecks | None = None
                     ) -> dict[str, Any]:
    """Every measurement the checks use, with the per-kind detail and the failed reasons."""
    cfg = cfg or ReasoningChecks()
    run = longest_shared_run(_squash(reasoning), _squash(text))
    r_share, t_share = ngram_overlap(reasoning, text, cfg.ngram)
    covered, missed = requirement_coverage(prompt, reasoning)
    kinds = decision_kinds(reasoning)
    ratio = len(reasoning) / len(text) if text else float("inf")
    report: dict[str, Any] = {
        "copy": {"longest_run": run, "ngram": cfg.ngram, "reasoning_in_text": r_share,
                 "text_in_reasoning": t_share},
        "requirements": {"covered": covered, "missed": missed,
                         "coverage": len(covered) / (len(covered) + len(missed))
                         if covered or missed else 1.0},
        "decision_kinds": {k: {"present": bool(v), "keywords": v} for k, v in kinds.items()},
        "kinds_present": sum(bool(v) for v in kinds.values()),
        "length_ratio": ratio,
    }
    report["problems"] = _problems(report, cfg)
    return report


def _problems(rep: dict[str, Any], cfg: ReasoningChecks) -> list[str]:
    out = []
    copy = rep["copy"]
    if cfg.max_copy_run is not None and copy["longest_run"] > cfg.max_copy_run:
        out.append(f"reasoning_copies_text: longest shared run {copy['longest_run']} chars > "
                   f"{cfg.max_copy_run}")
    share = max(copy["reasoning_in_text"], copy["text_in_reasoning"])
    if cfg.max_ngram_overlap is not None and share > cfg.max_ngram_overlap:
        out.append(f"reasoning_copies_text: {cfg.ngram}-gram overlap {share:.2f} > "
                   f"{cfg.max_ngram_overlap}")
    req = rep["requirements"]
    if cfg.min_requirement_coverage is not None and req["coverage"] < cfg.min_requirement_coverage:
        n = len(req["covered"]) + len(req["missed"])
        out.append(f"reasoning_misses_requirements: covers {len(req['covered'])}/{n} "
                   f"({req['coverage']:.2f}) < {cfg.min_requirement_coverage}; missed: "
                   + "; ".join(req["missed"][:3]))
    if cfg.min_decision_kinds is not None and rep["kinds_present"] < cfg.min_decision_kinds:
        absent = [k for k, v in rep["decision_kinds"].items() if not v["present"]]
        out.append(f"reasoning_lacks_decisions: {rep['kinds_present']}/5 kinds < "
                   f"{cfg.min_decision_kinds}; absent: {', '.join(absent)}")
    ratio = rep["length_ratio"]
    lo, hi = cfg.min_length_ratio, cfg.max_length_ratio
    if (lo is not None and ratio < lo) or (hi is not None and ratio > hi):
        out.append(f"reasoning_length_ratio: {ratio:.2f} outside [{lo}, {hi}]")
    return out


def reasoning_problems(prompt: str, reasoning: str, text: str, cfg: ReasoningChecks | None = None
                       ) -> list[str]:
    """Named reasons the reasoning fails the LLM-free checks; empty when it passes."""
    return reasoning_report(prompt, reasoning, text, cfg)["problems"]
