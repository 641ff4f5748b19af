"""How much of its own text's (and prompt's) content a reasoning uses, beyond what any text shares.

Content units are Han characters and bigrams (Chinese) or stemmed content words (English). A
unit weighs (1 + log tf) * log((N + 1) / df): df counts the documents (this text and the other texts)
that hold it, so what every text shares ("不", "人", "之") weighs almost nothing and what only
this text holds weighs most; a text's profile is its 48 heaviest units (Chinese: 24
characters and 24 bigrams). `own` is the weighted
share of the text's profile that recurs in the reasoning, `prompt` the idf-weighted share of
the prompt's units; the same share against each other text tells what the reasoning would reach for any
text, so `margin` = own - mean(others) is near 0 for boilerplate and negative for a reasoning
written for another text. Without other texts the packaged background set stands in: the
bundled classical sample and ten modern pieces of `data/checks/background_zh.jsonl` (Chinese),
or the public-domain poems and fables and two modern pieces of `data/checks/background_en.jsonl`
(English)."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .units import content_units

TOP_UNITS = 48  # units of a text's profile (a 28-character quatrain has about 50)
BACKGROUND = {"zh": ("data/sample/classical_zh.jsonl", "data/checks/background_zh.jsonl"),
              "en": ("data/checks/background_en.jsonl",)}


@lru_cache(maxsize=2)
def background_texts(lang: str) -> tuple[str, ...]:
    """The packaged texts that stand in for `others` when a check has none."""
    out = []
    for path in BACKGROUND.get(lang, BACKGROUND["en"]):
        res = resources.files("coig_writer").joinpath(path)
        out += [json.loads(line)["text"] for line in res.read_text("utf-8").splitlines()
                if line.strip()]
    return tuple(out)


@dataclass(frozen=True)
class Grounding:
    own: float  # weighted share of the text's units found in the reasoning
    prompt: float  # weighted share of the prompt's units found in the reasoning
    others: tuple[float, ...]  # the share of each other text's units
    shared: tuple[str, ...]  # the heaviest units the reasoning shares with its text

    @property
    def baseline(self) -> float:
        return sum(self.others) / len(self.others) if self.others else 0.0

    @property
    def margin(self) -> float:
        return self.own - self.baseline


def _share(have: set[str], weight: dict[str, float]) -> float:
    """Weighted share of `weight`'s units in `have`; 1.0 when there is nothing to cover."""
    total = sum(weight.values())
    return sum(w for u, w in weight.items() if u in have) / total if total else 1.0


def _profile(doc: Counter[str], idf: dict[str, float], top: int, lang: str) -> dict[str, float]:
    """The `top` heaviest units of a document by tf-idf (Chinese: half single characters, half
    bigrams): for a short poem nearly all of its units, for a long text its key names and
    images, so length does not decide the share."""
    groups = ([u for u in doc if len(u) == 1], [u for u in doc if len(u) > 1]) if lang == "zh" \
        else (list(doc),)
    out: dict[str, float] = {}
    for units in groups:
        ranked = sorted((((1 + math.log(doc[u])) * idf[u], u) for u in units),
                        key=lambda x: (-x[0], x[1]))
        out.update((u, w) for w, u in ranked[:top // len(groups)] if w > 0)
    return out


@lru_cache(maxsize=64)
def _corpus(pool: tuple[str, ...], extra: tuple[str, ...], lang: str, top: int
            ) -> tuple[Counter[str], int, tuple[dict[str, float], ...]]:
    """Document frequencies over `pool` + `extra`, their count, and the profile of each text
    of `pool` (cached: one per text and set of other texts)."""
    rest = [content_units(o, lang) for o in pool]
    docs = rest + [content_units(b, lang) for b in extra]
    df = Counter(u for d in docs for u in d)
    idf = {u: math.log((len(docs) + 1) / c) for u, c in df.items()}
    return df, len(docs), tuple(_profile(d, idf, top, lang) for d in rest if d)


@lru_cache(maxsize=1024)
def grounding(reasoning: str, text: str, prompt: str, others: tuple[str, ...], lang: str,
              top: int = TOP_UNITS) -> Grounding:
    """The reasoning's grounding in its text and prompt, compared with `others` (or with the
    background set when empty). Document frequencies count the text, `others` and the
    background set, so a handful of other texts still tells what any text shares; copies of
    `text` among them are left out."""
    key = text.strip()
    background = tuple(b for b in background_texts(lang) if b.strip() != key)
    pool = tuple(dict.fromkeys(o for o in others if o.strip() != key)) or background
    df, n, profiles = _corpus(pool, () if pool == background else background, lang, top)
    have = set(content_units(reasoning, lang))
    own, asked = content_units(text, lang), content_units(prompt, lang)
    mine = _profile(own, {u: math.log((n + 2) / (df[u] + 1)) for u in own}, top, lang)
    pidf = {u: math.log((n + 3) / (df[u] + (u in own) + 1)) for u in asked}
    shared = sorted((u for u in mine if u in have), key=lambda u: (-mine[u], -len(u), u))
    return Grounding(own=_share(have, mine), prompt=_share(have, pidf),
                     others=tuple(_share(have, p) for p in profiles), shared=tuple(shared[:6]))
