"""Counterfactual variants of given triplets, for `construct audit-gates`: each variant keeps a
real triplet but plants one defect (the prompt or reasoning of another text, a prompt that
copies the text or parrots the guidelines, a reasoning laid out as JSON, boilerplate or cut off,
the text's sentences shuffled). Deterministic: the same triplets, kinds and seed give the same
variants, in any process.

A variant's id is the original's id plus `~<kind>`; `Variant.row()` is a triplets-file row
(`variant`, `variant_of`, `donor` added) that `construct gate` reads as it is.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..prompts import load_template
from .checks.units import detect_lang
from .gate_job import GateItem


@dataclass(frozen=True)
class VariantKind:
    """One kind of variant: what it changes, which part of the gate is meant to see it
    (`checks`: a named LLM-free check; `llm`: only the validation and scores can), and what it
    is, in words."""

    name: str
    changes: str  # prompt | reasoning | text
    seen_by: str  # checks | llm
    label: str
    describes: str


KINDS: dict[str, VariantKind] = {k.name: k for k in (
    VariantKind("prompt_of_another_text", "prompt", "llm", "a prompt of another text",
                "the prompt of another triplet of the input; reasoning and text kept"),
    VariantKind("reasoning_of_another_text", "reasoning", "checks", "a reasoning of another text",
                "the reasoning of another triplet of the input; prompt and text kept"),
    VariantKind("prompt_copies_text", "prompt", "checks", "a prompt that copies the text",
                "the prompt with one of the text's sentences dictated word for word"),
    VariantKind("prompt_of_guidelines", "prompt", "checks", "a prompt made of the guidelines",
                "a prompt that reads back the construction templates' data standards (as the "
                "demo's '请理解并符合以下要求：1. 文章是真实的优秀作品…')"),
    VariantKind("reasoning_as_json", "reasoning", "checks", "a reasoning laid out as JSON",
                "the same reasoning as a JSON object keyed by the five decision kinds"),
    VariantKind("generic_reasoning", "reasoning", "checks", "a generic reasoning",
                "first-person boilerplate about planning, structure, culture, development and "
                "revision that would fit any text"),
    VariantKind("shuffled_text", "text", "llm", "a sentence-shuffled text",
                "the text's sentences (or clauses) in another order"),
    VariantKind("truncated_reasoning", "reasoning", "llm", "a truncated reasoning",
                "the first 30-50% of the reasoning, cut off inside a sentence"),
)}
SWAPS = ("prompt_of_another_text", "reasoning_of_another_text")

DECISION_NAMES = {
    "zh": ("理解与规划", "结构与风格", "文化与语境", "叙事与展开", "修改与打磨"),
    "en": ("interpretation and planning", "structure and style", "cultural context",
           "narrative development", "revision"),
}
GENERIC: dict[str, tuple[tuple[str, ...], ...]] = {
    "zh": (
        ("拿到这个写作指令，我首先要理解用户真正想要什么：题材、篇幅、语气，以及背后希望读者得到的感受，"
         "然后确定作品的核心立意。",
         "我先把用户的要求通读了一遍，弄清楚指令里明说的和没明说的期待，再想清楚这篇作品最想表达的是什么。"),
        ("结构上，我打算开头先把情境立起来，中间一层一层推进，结尾收在一个有余味的地方，不把话说尽。",
         "在篇章安排上，我想让开头、中段和结尾各有分工，句式有长有短，语言贴合体裁，节奏张弛有度。"),
        ("文化上，我会选用和主题相合的意象，必要时化用一两个恰当的典故，让作品有一点底蕴，但不堆砌。",
         "我还考虑了作品的文化背景：用什么意象、什么传统的表达最能引起读者的共鸣，又不显得陈旧。"),
        ("内容上要一步步展开，情感逐渐递进，关键的转折放在后半部分，让结尾自然地落下来。",
         "叙事上我让内容层层推进，先铺垫再转折，情感在最后达到高点，避免平铺直叙。"),
        ("写完之后我通读了一遍，删去拖沓和重复的句子，把几处用词改得更准确，确认每一条要求都照顾到了。",
         "最后我反复检查和润色，原本想多写一段，但觉得会拖沓，就删掉了，确保作品符合用户的全部要求。"),
    ),
    "en": (
        ("Reading the prompt, I first want to understand what the user really asks for: the form, "
         "the length, the tone, and the feeling the reader should be left with; then I settle the "
         "central idea.",
         "I start by going through the user's requirements, the explicit ones and the implied "
         "ones, and decide what this piece most wants to say."),
        ("For the structure, I plan to set up the situation at the opening, build it step by step "
         "in the middle and close on an ending that leaves something unsaid.",
         "I want the opening, the middle and the ending to each do their own work, with sentences "
         "of varied length, a register that suits the form and a rhythm that breathes."),
        ("I also think about the cultural context: which images and which traditional turns of "
         "phrase will resonate with readers without feeling stale.",
         "Culturally, I pick imagery that fits the theme and perhaps one apt allusion, to give the "
         "piece some depth without piling it on."),
        ("The content should unfold gradually, the emotion should build, and the key turn should "
         "come late, so that the ending lands naturally.",
         "I let the narrative develop in layers: groundwork first, then the turn, with the emotion "
         "peaking at the end instead of staying flat."),
        ("When the draft is done I read it through, cut the slack and repeated sentences, sharpen "
         "a few word choices and check that every requirement is met.",
         "Finally I revise and polish; I considered adding another section but dropped it as too "
         "long, and I make sure the piece meets all of the user's requirements."),
    ),
}
COPY_FRAMES = {"zh": ("其中一句请写成“{s}”。", "开头就用这一句：“{s}”。", "要用上这一句：“{s}”。"),
               "en": (' Use this line in it: "{s}"', ' Begin with: "{s}"',
                      ' One sentence should read: "{s}"')}
GUIDELINE_LEAD = {"zh": "请理解并符合以下要求：", "en": "Please understand and follow these requirements: "}
_SENTENCE = {"zh": re.compile(r"[^。！？；…\n]+[。！？；…]*[”’」』）)]*"),
             "en": re.compile(r"[^.!?;\n]+[.!?;]*[\"')]*")}
_CLAUSE = {"zh": re.compile(r"[^，。！？；…\n]+[，。！？；…]*[”’」』）)]*"),
           "en": re.compile(r"[^,.!?;\n]+[,.!?;]*[\"')]*")}
_ENDS = "。！？；…，、”’」』）).!?;,\"' \n\t"
_MARKS = "。！？；…，、.!?;, \t"  # what stays in place when sentences move (quotes move along)


@dataclass
class Variant:
    """One counterfactual row: its kind, the original's id, the triplet it borrowed from (the
    swaps) and the row as the gate reads it (id `<original id>~<kind>`)."""

    kind: str
    of: str
    item: GateItem
    donor: str | None = None

    def row(self) -> dict[str, Any]:
        return {**self.item.model_dump(exclude={"origin"}), "variant": self.kind,
                "variant_of": self.of, "donor": self.donor}


@dataclass
class Skipped:
    """A variant that cannot be made of one triplet (e.g. a one-sentence text to shuffle)."""

    kind: str
    of: str
    why: str


def parse_kinds(spec: str | Sequence[str] | None) -> list[str]:
    """Kinds from `kind,kind…` (None or 'all': every kind); ValueError naming unknown ones."""
    if spec is None or spec == "all":
        return list(KINDS)
    names = [k.strip() for k in (spec.split(",") if isinstance(spec, str) else spec) if k.strip()]
    unknown = [k for k in names if k not in KINDS]
    if unknown or not names:
        raise ValueError(f"unknown variant kinds {unknown or names}; choose from {', '.join(KINDS)}")
    return list(dict.fromkeys(names))


def sentences(text: str, lang: str) -> list[str]:
    """The text's sentences with their end punctuation (whitespace between them dropped)."""
    return [s.strip() for s in _SENTENCE[lang].findall(text) if s.strip()]


def rng_for(seed: int, kind: str, key: str) -> random.Random:
    """The random source of one variant: a function of the seed, kind and id only."""
    return random.Random(f"{seed}/{kind}/{key}")


def _lang(item: GateItem) -> str:
    return detect_lang(item.answer, item.query)


def _variant(item: GateItem, kind: str, donor: str | None = None, **change: str) -> Variant:
    data = {**item.model_dump(), **change, "id": f"{item.id}~{kind}",
            "origin": f"{item.origin} ({kind})".strip()}
    return Variant(kind, item.id, GateItem.model_validate(data), donor)


# -- one kind each ----------------------------------------------------------------------------
def copy_prompt(item: GateItem, rng: random.Random) -> Variant | str:
    """The prompt with a stretch of the text dictated: consecutive sentences from a seeded
    start, at least 12 Han characters (8 English words) of them."""
    lang = _lang(item)
    units = [s.rstrip(_ENDS) for s in sentences(item.answer, lang)]
    if not any(units):
        return "the text has no sentence to copy"
    start = rng.randrange(len(units))
    need = 12 if lang == "zh" else 8
    for a in (start, 0):
        picked: list[str] = []
        for u in units[a:]:
            picked.append(u)
            if _size(" ".join(picked), lang) >= need:
                break
        if _size(" ".join(picked), lang) >= need:
            break
    s = ("，" if lang == "zh" else ", ").join(picked)
    s = s[:40] if lang == "zh" else s[:200]
    return _variant(item, "prompt_copies_text",
                    query=item.query.rstrip() + rng.choice(COPY_FRAMES[lang]).format(s=s))


def _size(text: str, lang: str) -> int:
    return len(re.findall(r"[\u3400-\u9fff]", text)) if lang == "zh" else \
        len(re.findall(r"[A-Za-z]+", text))


def guideline_clauses(lang: str, template_dir: str | None = None) -> list[str]:
    """The clauses of the construction templates' system message (role and data standards,
    not the genre table), list markers removed."""
    system = load_template("shared/prefix", lang, template_dir).system
    system = system.split("$genres")[0].rsplit("\n", 2)[0]
    parts = re.split(r"[；;。\n]|(?<=[a-z]\.) ", system)
    parts = [re.sub(r"^\s*\d+\.\s*|[（(]\d[）)]", "", p).strip(" ：:，,") for p in parts]
    return [p for p in parts if _size(p, lang) >= (8 if lang == "zh" else 6)]


def guideline_prompt(item: GateItem, rng: random.Random, template_dir: str | None = None
                     ) -> Variant | str:
    lang = _lang(item)
    clauses = guideline_clauses(lang, template_dir)
    if len(clauses) < 3:
        return "the templates hold no data standards to read back"
    picked = sorted(rng.sample(range(len(clauses)), rng.randint(3, min(5, len(clauses)))))
    end = "。" if lang == "zh" else ". "
    body = "".join(f"{n}. {clauses[i]}{end}" for n, i in enumerate(picked, 1))
    return _variant(item, "prompt_of_guidelines", query=GUIDELINE_LEAD[lang] + body.strip())


def json_reasoning(item: GateItem, rng: random.Random) -> Variant | str:
    lang = _lang(item)
    units = sentences(item.thought, lang)
    if not units:
        return "the reasoning is empty"
    names = DECISION_NAMES[lang]
    k = len(names)
    bounds = [round(i * len(units) / k) for i in range(k + 1)]
    sep = "" if lang == "zh" else " "
    obj = {n: sep.join(units[bounds[i]:bounds[i + 1]]) for i, n in enumerate(names)}
    indent = rng.choice((2, None))
    return _variant(item, "reasoning_as_json",
                    thought=json.dumps(obj, ensure_ascii=False, indent=indent))


def generic_reasoning(item: GateItem, rng: random.Random) -> Variant:
    lang = _lang(item)
    sep = "" if lang == "zh" else " "
    text = sep.join(rng.choice(options) for options in GENERIC[lang])
    return _variant(item, "generic_reasoning", thought=text)


def shuffled_text(item: GateItem, rng: random.Random) -> Variant | str:
    """The sentences (the clauses of a one-sentence text) in a new order; punctuation, line
    breaks and spacing stay where they were, so the layout and form look the same."""
    lang = _lang(item)
    spans = [m.span() for m in _SENTENCE[lang].finditer(item.answer) if m.group().strip()]
    if len(spans) < 2:
        spans = [m.span() for m in _CLAUSE[lang].finditer(item.answer) if m.group().strip()]
    if len(spans) < 2:
        return "the text has fewer than two sentences or clauses to shuffle"
    parts = [_split_unit(item.answer[a:b]) for a, b in spans]  # (lead, content, tail)
    contents = [c for _, c, _ in parts]
    for _ in range(20):
        order = list(range(len(parts)))
        rng.shuffle(order)
        if [contents[i] for i in order] != contents:
            break
    else:
        return "every order of the text's sentences reads the same"
    out, last = [], 0
    for (a, b), (lead, _, tail), i in zip(spans, parts, order, strict=True):
        out += [item.answer[last:a], lead, contents[i], tail]
        last = b
    out.append(item.answer[last:])
    return _variant(item, "shuffled_text", answer="".join(out))


def _split_unit(unit: str) -> tuple[str, str, str]:
    """(leading whitespace, content, end punctuation and trailing whitespace) of a unit."""
    body = unit.lstrip()
    lead = unit[:len(unit) - len(body)]
    content = body.rstrip(_MARKS)
    return lead, content, body[len(content):]


def truncated_reasoning(item: GateItem, rng: random.Random) -> Variant | str:
    thought = item.thought.rstrip()
    if len(thought) < 20:
        return "the reasoning is too short to cut"
    cut = int(len(thought) * rng.uniform(0.3, 0.5))
    while cut > 1 and thought[cut - 1] in _ENDS:
        cut -= 1
    return _variant(item, "truncated_reasoning", thought=thought[:cut])


def donors(items: Sequence[GateItem], kind: str, seed: int) -> dict[str, GateItem | None]:
    """For each item, the other triplet a swap borrows from: a seeded cyclic order over the
    items (Sattolo), so every triplet lends once; the next one in the cycle whose field differs
    when two share it (None when none does)."""
    field = "query" if kind == "prompt_of_another_text" else "thought"
    order = sorted(range(len(items)), key=lambda i: items[i].id)
    rng = random.Random(f"{seed}/{kind}")
    cycle = list(order)
    for i in range(len(cycle) - 1, 0, -1):
        j = rng.randrange(i)
        cycle[i], cycle[j] = cycle[j], cycle[i]
    nxt = {cycle[i]: cycle[(i + 1) % len(cycle)] for i in range(len(cycle))}
    out: dict[str, GateItem | None] = {}
    for i in order:
        j, found = nxt[i], None
        for _ in range(len(items) - 1):
            a, b = items[i], items[j]
            if getattr(a, field) != getattr(b, field) and a.answer != b.answer:
                found = b
                break
            j = nxt[j]
        out[items[i].id] = found
    return out


def check_request(items: Sequence[GateItem], kinds: Sequence[str] | str | None) -> list[str]:
    """The kinds asked for, or ValueError: unknown kinds, repeated ids, or a swap kind with
    fewer than two triplets."""
    kinds = parse_kinds(kinds)
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ValueError("the triplets' ids repeat; variants need unique ids")
    if len(items) < 2 and any(k in SWAPS for k in kinds):
        raise ValueError("variants of another text (" + ", ".join(k for k in kinds if k in SWAPS)
                         + ") need at least two triplets")
    return kinds


def build_variants(items: Sequence[GateItem], kinds: Sequence[str] | None = None, seed: int = 0,
                   template_dir: str | None = None) -> tuple[list[Variant], list[Skipped]]:
    """The variants of `items` of each kind (default: every kind), in kind then input order,
    and the ones that could not be made. ValueError: unknown kinds, repeated ids, or a swap
    kind with fewer than two triplets."""
    kinds = check_request(items, kinds)
    made: list[Variant] = []
    skipped: list[Skipped] = []
    for kind in kinds:
        lend = donors(items, kind, seed) if kind in SWAPS else {}
        for item in items:
            rng = rng_for(seed, kind, item.id)
            if kind in SWAPS:
                d = lend[item.id]
                if d is None:
                    skipped.append(Skipped(kind, item.id, "no other triplet differs from it"))
                    continue
                field = "query" if kind == "prompt_of_another_text" else "thought"
                res: Variant | str = _variant(item, kind, d.id, **{field: getattr(d, field)})
            elif kind == "prompt_of_guidelines":
                res = guideline_prompt(item, rng, template_dir)
            else:
                res = MAKERS[kind](item, rng)
            if isinstance(res, str):
                skipped.append(Skipped(kind, item.id, res))
            else:
                made.append(res)
    return made, skipped


MAKERS = {"prompt_copies_text": copy_prompt, "reasoning_as_json": json_reasoning,
          "generic_reasoning": generic_reasoning, "shuffled_text": shuffled_text,
          "truncated_reasoning": truncated_reasoning}
