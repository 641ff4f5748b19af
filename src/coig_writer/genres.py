"""Genre taxonomy loaded from `data/genres.yaml`: 7 categories, their genres, zh/en names, and the
forms (verse, prose, script) a text of each genre is expected to take."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

FORMS = ("verse", "prose", "script")


@dataclass(frozen=True)
class Genre:
    key: str
    category: str
    zh: str
    en: str
    forms: tuple[str, ...] = ("prose",)


@dataclass(frozen=True)
class Category:
    key: str
    zh: str
    en: str
    paper_count: int | None
    genres: tuple[Genre, ...]
    forms: tuple[str, ...] = ("prose",)


class Taxonomy:
    """Categories and genres with lookup by key or by Chinese/English name."""

    def __init__(self, categories: list[Category], version: int):
        self.categories = categories
        self.version = version
        self._by_name: dict[str, tuple[str, str | None]] = {}
        for c in categories:
            for name in (c.key, c.zh, c.en):
                self._by_name[name.casefold()] = (c.key, None)
            for g in c.genres:
                for name in (g.key, g.zh, g.en):
                    self._by_name[name.casefold()] = (c.key, g.key)

    @property
    def genres(self) -> list[Genre]:
        return [g for c in self.categories for g in c.genres]

    def genres_by_key(self) -> dict[str, Genre]:
        return {g.key: g for g in self.genres}

    def category(self, key: str) -> Category:
        return next(c for c in self.categories if c.key == key)

    def expected_forms(self, name: str | None) -> tuple[str, ...] | None:
        """The forms a genre or category (key or name, any language) expects; None if unknown."""
        cat, genre = self.resolve(name)
        if genre is not None:
            return self.genres_by_key()[genre].forms
        return self.category(cat).forms if cat is not None else None

    def resolve(self, name: str | None) -> tuple[str | None, str | None]:
        """Map a category or genre name (any language) to (category key, genre key)."""
        if not name:
            return None, None
        return self._by_name.get(name.strip().casefold(), (None, None))

    def listing(self, lang: str) -> str:
        """One line per category with its genres, for prompts."""
        lines = []
        for c in self.categories:
            names = "、" if lang == "zh" else ", "
            gs = names.join(f"{g.key}({getattr(g, lang)})" for g in c.genres)
            lines.append(f"- {c.key} ({getattr(c, lang)}): {gs}")
        return "\n".join(lines)


def _forms(value: object, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    forms = tuple(value) if isinstance(value, list) else (value,)
    bad = [f for f in forms if f not in FORMS]
    if bad or not forms:
        raise ValueError(f"data/genres.yaml: {where}: form must be some of {FORMS}, got {value!r}")
    return tuple(str(f) for f in forms)


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    text = resources.files("coig_writer").joinpath("data/genres.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    cats = []
    for ckey, c in raw["categories"].items():
        cforms = _forms(c.get("form"), ckey, ("prose",))
        genres = tuple(Genre(gkey, ckey, g["zh"], g["en"], _forms(g.get("form"), gkey, cforms))
                       for gkey, g in c["genres"].items())
        cats.append(Category(ckey, c["zh"], c["en"], c.get("paper_count"), genres, cforms))
    return Taxonomy(cats, raw.get("version", 1))
