"""Lexical diversity: TTR, and the length-robust MATTR and MTLD, at character or word level.

Words: jieba segmentation for Chinese, a regex word tokenizer for English. Punctuation and
whitespace are never tokens.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

_EN_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|\d+(?:\.\d+)?")
_CHAR = re.compile(r"[^\W_]", re.UNICODE)


@cache
def _jieba():  # imported lazily: building its prefix dictionary takes about a second
    import jieba

    jieba.setLogLevel(60)
    return jieba


def tokens(text: str, lang: str, level: str = "word") -> list[str]:
    """Tokens of `text`: `char` (letters, digits, Han characters) or `word` level."""
    if level == "char":
        return _CHAR.findall(text.lower())
    if level != "word":
        raise ValueError(f"level must be word or char, got {level!r}")
    if lang == "zh":
        return [w for w in _jieba().lcut(text) if _CHAR.search(w)]
    return [w.lower() for w in _EN_WORD.findall(text)]


def ttr(toks: Sequence[str]) -> float:
    return len(set(toks)) / len(toks) if toks else 0.0


def mattr(toks: Sequence[str], window: int = 50) -> float:
    """Moving-average TTR (Covington & McFall 2010); plain TTR when shorter than the window."""
    n = len(toks)
    if n <= window:
        return ttr(toks)
    counts = Counter(toks[:window])
    total = len(counts)
    for i in range(window, n):
        out, inc = toks[i - window], toks[i]
        counts[out] -= 1
        if counts[out] == 0:
            del counts[out]
        counts[inc] += 1
        total += len(counts)
    return total / ((n - window + 1) * window)


def _mtld_pass(toks: Sequence[str], threshold: float) -> float:
    factors, types, count, current = 0.0, set(), 0, 1.0
    for t in toks:
        count += 1
        types.add(t)
        current = len(types) / count
        if current <= threshold:
            factors += 1
            types, count, current = set(), 0, 1.0
    if count:
        factors += (1 - current) / (1 - threshold)
    return len(toks) / factors if factors else float(len(toks))


def mtld(toks: Sequence[str], threshold: float = 0.72) -> float:
    """MTLD (McCarthy & Jarvis 2010): mean of forward and backward passes. A text whose TTR
    never falls (all tokens distinct) gets its length."""
    if not toks:
        return 0.0
    return (_mtld_pass(toks, threshold) + _mtld_pass(list(reversed(toks)), threshold)) / 2


@dataclass
class Diversity:
    tokens: int
    ttr: float
    mattr: float
    mtld: float


def measure(text: str, lang: str, level: str = "word", window: int = 50) -> Diversity:
    t = tokens(text, lang, level)
    return Diversity(len(t), ttr(t), mattr(t, window), mtld(t))


def summarize(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": statistics.fmean(values), "median": statistics.median(values),
            "n": len(values)}
