"""Corpus filters: length, date cutoff, exact and MinHash near-duplicate detection.

Near duplicates: character 5-gram shingles (the sane unit for Chinese, which has no spaces),
MinHash signatures computed with numpy for many documents at once, LSH band keys that the
store indexes (so an ingest hashes only new texts), and an exact Jaccard check of every
candidate (so LSH false positives never filter a text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..store import Store

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
NUM_PERM = 120
SEED = 20261125
_U64 = np.uint64


# NFKC maps the full-width ASCII forms and the ideographic space to ASCII; doing that first with
# str.translate lets most Chinese text pass NFKC's quick check instead of its slow full pass
# (about 60 us per 300 characters). The result is identical to `normalize_text`.
_WIDE = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
_WIDE_RE = re.compile("[\uff01-\uff5e\u3000]")


def normalize_fast(text: str) -> str:
    """`records.normalize_text`: the same result, several times faster on Chinese text."""
    for c in set(_WIDE_RE.findall(text)):  # a few distinct punctuation marks: str.replace wins
        text = text.replace(c, _WIDE[c])
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def digest_of(normalized: str) -> str:
    """`records.content_hash` of a text, from its `normalize_fast` form."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def length_reason(text: str, min_chars: int, max_chars: int, n: int | None = None
                  ) -> str | None:
    """`n`: the normalized length, when the caller has it."""
    n = len(normalize_fast(text)) if n is None else n
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


def reason_key(reason: str | None) -> str:
    """`near_duplicate of x (...)` -> `near_duplicate`; None -> `ok`."""
    return reason.split(":")[0].split(" ")[0] if reason else "ok"


def dedup_form(text: str, normalized: bool = False) -> str:
    """Normalized, lower-cased text with whitespace and punctuation removed."""
    return _NOISE.sub("", (text if normalized else normalize_fast(text)).lower())


def char_shingles(text: str, n: int) -> set[str]:
    """Character n-grams of the text with whitespace and punctuation removed (suits Chinese)."""
    s = dedup_form(text)
    if len(s) <= n:
        return {s} if s else set()
    return {s[i:i + n] for i in range(len(s) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """The LSH S-curve: chance that a pair with Jaccard `s` shares at least one band."""
    return 1.0 - (1.0 - s ** rows) ** bands


def lsh_layout(threshold: float, num_perm: int = NUM_PERM, recall: float = 0.99) -> tuple[int, int]:
    """Bands x rows for `threshold`: the most rows per band (fewest chance candidates) such that
    a pair exactly at the threshold becomes a candidate with probability >= `recall`.

    With 120 permutations: 0.8 -> 20 x 6 (P = 1 - (1 - 0.8^6)^20 = 0.998 at 0.8, 0.92 at 0.7,
    0.27 at 0.5, 0.01 at 0.3); 0.7 -> 30 x 4; 0.9 -> 12 x 10. Candidates are then confirmed
    with the exact shingle Jaccard, so a generous curve costs a few checks, never a wrong filter.
    datasketch's default for 0.8 (9 x 13) is candidate only 40% of the time at 0.8.
    """
    for rows in range(num_perm, 0, -1):
        if candidate_probability(threshold, num_perm // rows, rows) >= recall:
            return num_perm // rows, rows
    return num_perm, 1


@dataclass(frozen=True)
class MinHasher:
    """MinHash over character n-gram shingles, vectorised over many documents.

    A shingle's 64-bit hash is a polynomial of its code points (mixed by a splitmix64 finaliser,
    top 32 bits kept); permutation j is the multiply-add-shift hash (a_j * x + b_j) >> 32 over
    64-bit words. Everything is numpy over the concatenated shingles of a batch.
    """

    ngram: int = 5
    num_perm: int = NUM_PERM
    seed: int = SEED

    @property
    def version(self) -> str:
        """Identifies the signatures: stored ones are reused only when this matches."""
        return f"charminhash1-n{self.ngram}-p{self.num_perm}-s{self.seed}"

    @cached_property
    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        poly = rng.integers(1, 2 ** 63, size=self.ngram, dtype=np.uint64) * _U64(2) + _U64(1)
        a = rng.integers(1, 2 ** 63, size=self.num_perm, dtype=np.uint64) * _U64(2) + _U64(1)
        b = rng.integers(0, 2 ** 63, size=self.num_perm, dtype=np.uint64)
        return poly, a, b

    def shingle_hashes(self, texts: list[str], normalized: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes (as uint64) of every shingle of every text, and shingles per text."""
        n = self.ngram
        forms = [dedup_form(t, normalized) for t in texts]
        forms = [f.ljust(n, "\0") if 0 < len(f) < n else f for f in forms]  # one short shingle
        lengths = np.fromiter((len(f) for f in forms), dtype=np.int64, count=len(forms))
        counts = np.maximum(lengths - n + 1, 0)
        codes = np.frombuffer("".join(forms).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        m = len(codes) - n + 1
        if m <= 0 or not counts.sum():
            return np.zeros(0, dtype=np.uint64), counts
        poly = self._params[0]
        with np.errstate(over="ignore"):
            h = codes[:m] * poly[0]
            for k in range(1, n):
                h += codes[k:m + k] * poly[k]
            starts = np.cumsum(lengths) - lengths
            pos = np.arange(len(codes), dtype=np.int64) - np.repeat(starts, lengths)
            valid = (pos <= np.repeat(lengths - n, lengths))[:m]
            h = h[valid]
            h ^= h >> _U64(30)
            h *= _U64(0xBF58476D1CE4E5B9)
            h ^= h >> _U64(27)
            h *= _U64(0x94D049BB133111EB)
            h ^= h >> _U64(31)
        return h >> _U64(32), counts

    def signatures(self, texts: list[str], normalized: bool = False) -> np.ndarray:
        """(len(texts), num_perm) uint32 MinHash signatures; all 0xFFFFFFFF for an empty text.
        `normalized`: the texts are `normalize_fast` forms already."""
        x, counts = self.shingle_hashes(texts, normalized)
        out = np.full((len(texts), self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        has = counts > 0
        if not has.any():
            return out
        offsets = (np.cumsum(counts) - counts)[has]
        _, a, b = self._params
        col = np.empty(len(x), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(self.num_perm):
                np.multiply(x, a[j], out=col)
                col += b[j]
                col >>= _U64(32)
                out[has, j] = np.minimum.reduceat(col, offsets)
        return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(len(sigs), bands) int64 keys: a hash of each band's rows, salted with the band number."""
    n = len(sigs)
    v = sigs[:, :bands * rows].astype(np.uint64).reshape(n, bands, rows)
    rng = np.random.default_rng(SEED + rows)
    mult = rng.integers(1, 2 ** 63, size=rows, dtype=np.uint64) * _U64(2) + _U64(1)
    with np.errstate(over="ignore"):
        h = (v * mult).sum(axis=2, dtype=np.uint64)
        h += np.arange(bands, dtype=np.uint64) * _U64(0x9E3779B97F4A7C15)
        h ^= h >> _U64(29)
        h *= _U64(0xBF58476D1CE4E5B9)
        h ^= h >> _U64(32)
    return h.view(np.int64)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)


class NearDupIndex:
    """The store's persistent near-duplicate index: signatures and band keys live in SQLite,
    so memory stays bounded and each text is hashed once, ever.

    Every stored text that reached the near-duplicate check has a signature and band keys;
    lookups consider only texts whose status is `ok`. Candidates are confirmed with the exact
    shingle Jaccard. `prepare()` re-keys the bands when the threshold's layout changes and
    re-hashes everything when the hashing itself changes (another shingle size).
    """

    def __init__(self, store: Store, threshold: float = 0.8, ngram: int = 5):
        self.store = store
        self.threshold = threshold
        self.hasher = MinHasher(ngram=ngram)
        self.bands, self.rows = lsh_layout(threshold, self.hasher.num_perm)
        self.hashed = 0  # signatures computed by this object
        # content hash -> (signature bytes, band keys), for one batch
        self._sigs: dict[str, tuple[bytes, list[int]]] = {}

    @property
    def layout(self) -> str:
        return f"{self.bands}x{self.rows}"

    def prepare(self, page: int = 1000) -> int:
        """Bring the stored index in line with this one; returns how many texts were hashed."""
        st = self.store
        before = self.hashed
        with st.transaction():
            if st.corpus.corpus_meta("minhash_version") != self.hasher.version:
                st.corpus.clear_minhash()
                st.corpus.set_corpus_meta("minhash_version", self.hasher.version)
                st.corpus.set_corpus_meta("lsh_layout", self.layout)
            elif st.corpus.corpus_meta("lsh_layout") != self.layout:
                st.corpus.clear_minhash(bands_only=True)
                for rows in st.corpus.minhash_pages():
                    sigs = np.frombuffer(b"".join(s for _, s in rows), dtype=np.uint32)
                    keys = band_keys(sigs.reshape(len(rows), -1), self.bands, self.rows)
                    st.corpus.replace_band_keys([(k, n) for (n, _), ks in zip(rows, keys.tolist(),
                                                                        strict=True) for k in ks])
                st.corpus.set_corpus_meta("lsh_layout", self.layout)
        while todo := st.corpus.ok_without_minhash(page):
            with st.transaction():
                forms = [normalize_fast(s.text) for s in todo]
                self.compute(forms, [digest_of(f) for f in forms], normalized=True)
                for s, f in zip(todo, forms, strict=True):
                    self.add(s.id, digest_of(f))
                self.forget()
        return self.hashed - before

    def compute(self, texts: list[str], digests: list[str], normalized: bool = False) -> None:
        """Hash a batch of texts (keyed by content hash) at once, for `check` and `add`."""
        todo = {d: t for t, d in zip(texts, digests, strict=True) if d not in self._sigs}
        if not todo:
            return
        sigs = self.hasher.signatures(list(todo.values()), normalized)
        self.hashed += len(todo)
        self._remember(list(todo), sigs)

    def load(self, stored: dict[str, bytes]) -> None:
        """Use signatures already in the store, keyed by content hash (no hashing)."""
        if stored:
            sigs = np.frombuffer(b"".join(stored.values()), dtype=np.uint32)
            self._remember(list(stored), sigs.reshape(len(stored), -1))

    def _remember(self, digests: list[str], sigs: np.ndarray) -> None:
        keys = band_keys(sigs, self.bands, self.rows).tolist()
        empty = (sigs == 0xFFFFFFFF).all(axis=1).tolist()  # no shingles: nothing to compare
        for d, sig, ks, e in zip(digests, sigs, keys, empty, strict=True):
            self._sigs[d] = (sig.tobytes(), [] if e else ks)

    def check(self, key: str, text: str, digest: str, before_rowid: int | None = None
              ) -> tuple[str, float] | None:
        """(id, Jaccard) of the most similar stored `ok` text (other than `key`, stored before
        `before_rowid` if given) at or above the threshold; needs `compute` or `load` first."""
        sig = self._sigs.get(digest)
        if not sig or not sig[1]:
            return None
        cands = self.store.corpus.near_dup_candidates(sig[1], before_rowid)
        if not cands:
            return None
        mine = char_shingles(text, self.hasher.ngram)
        best: tuple[str, float] | None = None
        for cid, ctext in cands:
            if cid == key:
                continue
            sim = jaccard(mine, char_shingles(ctext, self.hasher.ngram))
            if sim >= self.threshold and (best is None or sim > best[1] or
                                          (sim == best[1] and cid < best[0])):
                best = (cid, sim)
        return best

    def add(self, key: str, digest: str) -> None:
        """Index stored text `key` under the signature of its content (no commit); a no-op
        when it is indexed already or its signature was not computed."""
        sig = self._sigs.get(digest)
        if sig is not None:
            self.store.corpus.add_minhash(key, sig[0], sig[1])

    def has_signature(self, digest: str) -> bool:
        return digest in self._sigs

    def forget(self) -> None:
        """Drop computed signatures that were not added (a batch is done)."""
        self._sigs.clear()
