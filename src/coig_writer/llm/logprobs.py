"""Probability-weighted scores from answer-token log-probabilities (G-Eval, arXiv 2303.16634).

A model asked for an integer score writes one, but its `top_logprobs` at that position say how
sure it was: the expected value over the score tokens' probabilities carries that, the integer
does not (the 0.5B's "8" had probability 0.16, with "5", "9", "1", "7" close behind).

`score_distribution(logprobs, field, lo, hi)` finds the value of `"field": N` in a JSON answer
from its tokens and returns the integer written, the expected value and the probability mass on
score tokens found among the alternatives (the rest went to other tokens or was outside the top
k). Tokenizers differ in how they cut numbers:

- one token per number ("10" whole, Llama 3, GPT-4o): read directly;
- one token per digit (Qwen: "10" is "1" then "0"): where the answer's first digit is "1", the
  next position tells 1 from 10 (P("0") after "1" is the share of 10); where it is another digit,
  the mass on "1" cannot be split and goes to whichever of 1 and 10 lies nearer the written
  score (reported as `ambiguous`). Leading spaces are ignored ("8" and " 8" are one score).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScoreDistribution:
    """One score as written (`value`), its expectation over the score tokens' probabilities, the
    probability mass those tokens had, and the part of it that could not be told 1 from 10."""

    value: int
    expected: float
    mass: float
    ambiguous: float = 0.0
    probs: tuple[tuple[int, float], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "expected": round(self.expected, 4),
                "mass": round(self.mass, 4), "ambiguous": round(self.ambiguous, 4),
                "p_value": round(self.p_value, 4)}

    @property
    def p_value(self) -> float:
        """The probability the model gave the score it wrote."""
        return dict(self.probs).get(self.value, 0.0)


def token_text(tokens: list[dict[str, Any]]) -> tuple[str, list[int]]:
    """The answer text the tokens spell and each token's start offset in it (bytes decoded once
    over the whole answer, so characters split across tokens come out whole)."""
    raw = bytearray()
    starts_b: list[int] = []
    for t in tokens:
        starts_b.append(len(raw))
        b = t.get("b")
        raw += bytes(b) if b is not None else t["t"].encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "replace")
    # map byte offsets to character offsets
    char_at: dict[int, int] = {}
    pos = 0
    for i, ch in enumerate(text):
        char_at[pos] = i
        pos += len(ch.encode("utf-8", "surrogatepass")) if ch != "\ufffd" else 1
    char_at[pos] = len(text)
    starts = []
    for s in starts_b:
        while s not in char_at and s > 0:
            s -= 1
        starts.append(char_at.get(s, 0))
    return text, starts


def _digits(token: str) -> str | None:
    t = token.strip()
    return t if t.isascii() and t.isdigit() else None


def _alternatives(tok: dict[str, Any]) -> dict[str, float]:
    """Probability per alternative token text at one position (the chosen one included)."""
    out: dict[str, float] = {}
    for t, lp in [*tok.get("top", []), [tok["t"], tok["p"]]]:
        out.setdefault(t, math.exp(lp))
    return out


def score_distribution(tokens: list[dict[str, Any]] | None, field: str, lo: int = 0,
                       hi: int = 10) -> ScoreDistribution | None:
    """The distribution of the integer value of `"field"` in a JSON answer, from its tokens
    (the compact form of `llm.base.compact_logprobs`); None when the answer has no such value or
    no logprobs."""
    if not tokens:
        return None
    text, starts = token_text(tokens)
    m = re.search(r'"' + re.escape(field) + r'"\s*:\s*"?(\d+)', text)
    if not m:
        return None
    at = m.start(1)
    i = max(j for j, s in enumerate(starts) if s <= at)
    written = int(m.group(1))
    probs: dict[int, float] = {}
    ambiguous = 0.0
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    first_is_one = _digits(tokens[i]["t"]) == "1"
    for alt, p in _alternatives(tokens[i]).items():
        d = _digits(alt)
        if d is None:
            continue
        v = int(d)
        if d == "1" and hi >= 10:
            if first_is_one and nxt is not None:
                alts = _alternatives(nxt)
                p_zero = sum(q for t, q in alts.items() if _digits(t) == "0")
                p_other_digit = sum(q for t, q in alts.items() if _digits(t) not in (None, "0"))
                probs[10] = probs.get(10, 0.0) + p * p_zero
                probs[1] = probs.get(1, 0.0) + p * max(0.0, 1.0 - p_zero - p_other_digit)
                continue
            ambiguous += p
            v = 10 if abs(written - 10) < abs(written - 1) else 1
        if lo <= v <= hi:
            probs[v] = probs.get(v, 0.0) + p
    mass = sum(probs.values())
    if mass <= 0:
        return None
    expected = sum(v * p for v, p in probs.items()) / mass
    return ScoreDistribution(written, expected, min(1.0, mass), ambiguous,
                             tuple(sorted(probs.items())))


def score_distributions(tokens: list[dict[str, Any]] | None, fields: tuple[str, ...],
                        lo: int = 0, hi: int = 10) -> dict[str, ScoreDistribution]:
    """`score_distribution` for each field found."""
    out = {}
    for f in fields:
        d = score_distribution(tokens, f, lo, hi)
        if d is not None:
            out[f] = d
    return out
