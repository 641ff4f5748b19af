"""Corpus filters: length, date cutoff, exact and MinHash near-duplicate detection."""

from __future__ import annotations

import datetime as dt
import re

from datasketch import MinHash, MinHashLSH

from ..records import normalize_text

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def length_reason(text: str, min_chars: int, max_chars: int) -> str | None:
    n = len(normalize_text(text))
    if n < min_chars:
        return f"too_short: {n} < {min_chars} chars"
    if n > max_chars:
        return f"too_long: {n} > {max_chars} chars"
    return None


def date_reason(date: dt.date | None, after: dt.date | None, require_date: bool) -> str | None:
    if date is None:
        return "no_date: a date is required" if require_date or after else None
    if after and date <= after:
        return f"before_cutoff: {date} <= {after}"
    return None


def char_shingles(text: str, n: int) -> set[str]:
    """Character n-grams of the text with whitespace and punctuation removed (suits Chinese)."""
    s = _NOISE.sub("", normalize_text(text).lower())
    if len(s) <= n:
        return {s} if s else set()
    return {s[i:i + n] for i in range(len(s) - n + 1)}


class NearDupIndex:
    """MinHash LSH over character shingles; `check_and_add` returns the id of a near duplicate."""

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, ngram: int = 5):
        self.threshold = threshold
        self.num_perm = num_perm
        self.ngram = ngram
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._hashes: dict[str, MinHash] = {}

    def minhash(self, text: str) -> MinHash:
        m = MinHash(num_perm=self.num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in char_shingles(text, self.ngram)])
        return m

    def check_and_add(self, key: str, text: str) -> tuple[str, float] | None:
        """Return (duplicate id, estimated Jaccard) or add `text` under `key` and return None."""
        m = self.minhash(text)
        best: tuple[str, float] | None = None
        for other in self.lsh.query(m):
            sim = m.jaccard(self._hashes[other])
            if sim >= self.threshold and (best is None or sim > best[1]):
                best = (other, sim)
        if best is None:
            self.lsh.insert(key, m)
            self._hashes[key] = m
        return best

    def __len__(self) -> int:
        return len(self._hashes)
