"""Text units the checks measure with: whitespace-free and punctuation-free strings, character
and token n-grams, Han characters, content words, the language of a text, and the longest run
two texts share (a suffix automaton)."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
HAN_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+")
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+(?:'[A-Za-z]+)?|\d+")
NON_WORD = re.compile(r"[\s\W_]+")
EN_STOP = frozenset((
    "the a an and or but of to in on for with is are was were be been being it its it's that "
    "this these those as by at from your you yours he she they them their his her him we us our "
    "i me my mine not no so if then than there here what which who whom whose when where why how "
    "all any each every some such only own same too very can will would should could may might "
    "must shall do does did done have has had having into onto over under about up down out off "
    "again further once just also one two more most other others let let's please write").split())


def squash(text: str) -> str:
    """The text without whitespace."""
    return re.sub(r"\s+", "", text)


def compact(text: str) -> str:
    """The text without whitespace, punctuation or underscores."""
    return NON_WORD.sub("", text)


def ngrams(text: str, n: int) -> set[str]:
    """Character n-grams of `text` as it is."""
    return {text[i:i + n] for i in range(len(text) - n + 1)}


def tokens(text: str) -> list[str]:
    """Han characters and lower-case words or numbers, in order (punctuation dropped)."""
    return [t.lower() for t in TOKEN.findall(text)]


def token_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """n-grams over `tokens`: n Han characters, or n English words."""
    toks = tokens(text)
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def detect_lang(*texts: str) -> str:
    """`zh` when the texts have at least as many Han characters as English words, else `en`."""
    joined = "\n".join(texts)
    han = len(HAN.findall(joined))
    return "zh" if han and han >= len(re.findall(r"[A-Za-z]+", joined)) else "en"


def stem(word: str) -> str:
    """A crude English stem: enough to match `mothers`/`mother`, `waiting`/`waited`."""
    for suffix in ("ingly", "edly", "ing", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


@lru_cache(maxsize=4096)
def content_units(text: str, lang: str) -> Counter[str]:
    """What a text is about, as comparable units with their counts: for Chinese its Han
    characters and the bigrams inside runs of Han characters; for English its stemmed content
    words. Cached: callers must not change the counter."""
    out: Counter[str] = Counter()
    if lang == "zh":
        for run in HAN_RUN.findall(text):
            out.update(run)
            out.update(run[i:i + 2] for i in range(len(run) - 1))
        return out
    out.update(stem(w) for w in (m.lower() for m in WORD.findall(text))
               if w not in EN_STOP and not w.isdigit() and len(w) > 2)
    return out


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


def shared_run_text(a: str, b: str) -> str:
    """The longest common substring itself (quadratic; for short strings like prompts)."""
    best = ""
    for i in range(len(a)):
        j = i + len(best) + 1
        while j <= len(a) and a[i:j] in b:
            best = a[i:j]
            j += 1
    return best
