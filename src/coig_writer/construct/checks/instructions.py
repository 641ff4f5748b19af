"""The instructions a prompt must not parrot: the system messages, data standards and stage
instructions of the construction templates, in every layout and language, as token n-grams."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ...prompts import LANGS, PromptTemplate, TemplateError, list_templates, load_template
from .units import token_ngrams, tokens

_VARIABLE = re.compile(r"\$\{?\w+\}?")
# templates of evaluation, not of construction: a writing prompt may well sound like them
_NOT_CONSTRUCTION = ("generate", "judge_")


def construction_template_names(lang: str) -> list[str]:
    """Packaged construction templates of `lang`, both layouts (`shared/<name>` and legacy)."""
    return [n for n in list_templates(lang) if not n.startswith(_NOT_CONSTRUCTION)]


def template_text(t: PromptTemplate) -> str:
    """The words a template says itself: system, user and block texts without `$variables`."""
    return _VARIABLE.sub(" ", "\n".join([t.system, t.user, *(text for _, text in t.blocks)]))


def _templates(template_dir: str | None) -> list[PromptTemplate]:
    out = []
    for lang in LANGS:
        names = set(construction_template_names(lang))
        if template_dir:  # overrides replace the packaged ones; extra files count as well
            folder = Path(template_dir) / lang
            names |= {str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml")
                      if not p.name.startswith(_NOT_CONSTRUCTION)} if folder.is_dir() else set()
        for name in sorted(names):
            try:
                out.append(load_template(name, lang, template_dir))
            except TemplateError:  # not overridden there: the packaged one is in use
                out.append(load_template(name, lang))
    return out


@lru_cache(maxsize=8)
def instruction_ngrams(n: int = 4, template_dir: str | None = None) -> frozenset[tuple[str, ...]]:
    """Token n-grams (n Han characters or n English words) of every construction template's
    own text, packaged or under `template_dir/<lang>/`, both languages together."""
    grams: set[tuple[str, ...]] = set()
    for t in _templates(template_dir):
        grams |= token_ngrams(template_text(t), n)
    return frozenset(grams)


def instruction_overlap(prompt: str, n: int = 4, template_dir: str | None = None
                        ) -> tuple[float, list[str]]:
    """(share of the prompt's token n-grams found in the instructions, the longest parroted
    stretches as text)."""
    mine = token_ngrams(prompt, n)
    if not mine:
        return 0.0, []
    known = instruction_ngrams(n, template_dir)
    hits = mine & known
    return len(hits) / len(mine), _stretches(prompt, n, known)


def _join(toks: list[str]) -> str:
    return "".join(toks) if all(len(t) == 1 for t in toks) else " ".join(toks)


def _stretches(prompt: str, n: int, known: frozenset[tuple[str, ...]]) -> list[str]:
    toks = tokens(prompt)
    spans: list[tuple[int, int]] = []
    for i in range(len(toks) - n + 1):
        if tuple(toks[i:i + n]) in known:
            if spans and i <= spans[-1][1]:
                spans[-1] = (spans[-1][0], i + n)
            else:
                spans.append((i, i + n))
    spans.sort(key=lambda s: s[0] - s[1])
    return [_join(toks[a:b]) for a, b in spans[:3]]
