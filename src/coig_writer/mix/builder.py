"""Build a mixture at an exact creative:general ratio (or exact counts), with per-language
balance of the general part, optional genre stratification, and a seed; plus its manifest."""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .samples import SFTSample


class MixtureError(ValueError):
    """The requested mixture cannot be built from the given data."""


@dataclass
class MixSpec:
    """Either `ratio` (creative:general, e.g. "1:12") or `general` count; `creative` None takes
    every creative sample. `lang_balance` splits the general part, e.g. {"zh": 1, "en": 1}."""

    creative: int | None = None
    general: int | None = None
    ratio: str | None = None
    lang_balance: dict[str, float] | None = None
    stratify_genre: bool = False
    seed: int = 0
    name: str = "mixture"

    def general_count(self, n_creative: int) -> int:
        if self.general is not None:
            return self.general
        if self.ratio is None:
            return 0
        try:
            c, g = (Fraction(x.strip()) for x in self.ratio.split(":"))
        except (ValueError, ZeroDivisionError):
            raise MixtureError(f"ratio must look like 1:12, got {self.ratio!r}") from None
        if c <= 0 or g < 0:
            raise MixtureError(f"ratio must be positive, got {self.ratio!r}")
        exact = n_creative * g / c
        if exact.denominator != 1:
            raise MixtureError(f"{n_creative} creative samples at {self.ratio} need "
                               f"{float(exact):.2f} general ones; choose counts instead")
        return int(exact)


PRESETS: dict[str, MixSpec] = {  # the paper's five models (1,665 triplets; zh and en general)
    "CW": MixSpec(general=0, name="CW"),
    "CW+2k": MixSpec(general=2_000, lang_balance={"zh": 1, "en": 1}, name="CW+2k"),
    "CW+10k": MixSpec(general=10_000, lang_balance={"zh": 1, "en": 1}, name="CW+10k"),
    "CW+20k": MixSpec(general=20_000, lang_balance={"zh": 1, "en": 1}, name="CW+20k"),
    "G": MixSpec(creative=0, general=20_000, lang_balance={"zh": 1, "en": 1}, name="G"),
}


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split `total` by weights with the largest-remainder method (exact sum)."""
    s = sum(weights.values())
    if s <= 0:
        raise MixtureError("weights must sum to a positive number")
    raw = {k: total * w / s for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), k))[: total - sum(out.values())]:
        out[k] += 1
    return out


def _sample(pool: list[SFTSample], n: int, rng: random.Random, what: str) -> list[SFTSample]:
    if n > len(pool):
        raise MixtureError(f"need {n} {what} samples, only {len(pool)} available")
    return rng.sample(sorted(pool, key=lambda s: (s.source, s.id)), n)


@dataclass
class Mixture:
    spec: MixSpec
    samples: list[SFTSample]
    counts: dict[str, Any] = field(default_factory=dict)
    decontamination: dict[str, Any] | None = None  # the n-gram check's summary, when it ran

    def manifest(self) -> dict[str, Any]:
        ids = [{"id": s.id, "source": s.source, "kind": s.kind, "lang": s.lang}
               for s in self.samples]
        digest = hashlib.sha256(json.dumps(ids, ensure_ascii=False).encode()).hexdigest()
        return {"name": self.spec.name, "seed": self.spec.seed, "spec": self.spec.__dict__,
                "counts": self.counts, "decontamination": self.decontamination,
                "sha256": digest, "samples": ids}


def build_mixture(creative: list[SFTSample], general: list[SFTSample], spec: MixSpec) -> Mixture:
    rng = random.Random(spec.seed)
    n_c = len(creative) if spec.creative is None else spec.creative
    if spec.stratify_genre and 0 < n_c < len(creative):
        by_genre: dict[str, list[SFTSample]] = defaultdict(list)
        for s in creative:
            by_genre[s.genre or s.category or "(none)"].append(s)
        quota = apportion(n_c, {g: len(v) for g, v in by_genre.items()})
        chosen_c = [x for g in sorted(quota) for x in _sample(by_genre[g], quota[g], rng,
                                                              f"creative ({g})")]
    else:
        chosen_c = _sample(creative, n_c, rng, "creative")
    n_g = spec.general_count(len(chosen_c))
    if spec.lang_balance:
        quota = apportion(n_g, spec.lang_balance)
        pools: dict[str, list[SFTSample]] = defaultdict(list)
        for s in general:
            pools[s.lang or "?"].append(s)
        chosen_g = [x for lang in sorted(quota) for x in _sample(pools[lang], quota[lang], rng,
                                                                 f"general {lang}")]
    else:
        chosen_g = _sample(general, n_g, rng, "general")
    seen: set[tuple[str, str]] = set()
    for s in chosen_c + chosen_g:
        if (s.source, s.id) in seen:
            raise MixtureError(f"duplicate sample id {s.id!r} in {s.source}")
        seen.add((s.source, s.id))
    samples = chosen_c + chosen_g
    rng.shuffle(samples)
    langs: dict[str, int] = defaultdict(int)
    for s in chosen_g:
        langs[s.lang or "?"] += 1
    ratio = f"1:{len(chosen_g) / len(chosen_c):.2f}" if chosen_c else "0:1"
    return Mixture(spec, samples, {"creative": len(chosen_c), "general": len(chosen_g),
                                   "total": len(samples), "ratio": ratio,
                                   "general_by_lang": dict(langs)})
