"""Calibration of the LLM gate against human reviewers (`review calibration`).

A unit is one item in one review round: the gate's verdict on the version that round judged
(the triplet's `pipeline_status`, falling back to `status` where no human set it) against
the reviewers' majority. The human side (rules in `Rules`):
- each counted reviewer's latest decision in the round (assigned reviewers; in re-review
  rounds any reviewer, as `service.agreement_stats` counts them) is a vote: `accept` for,
  `reject` and `send_back` against, `edit` ("accept with my edits") for unless
  `edits="reject"`;
- human accept = more votes for than against; a tie is "not accepted" (`ties="reject"`:
  without a majority the item would not enter the data) or left out (`ties="skip"`);
- rounds with fewer than `min_reviewers` decisions are left out (and counted).
A round that ended in a send-back judged the triplet as it was sent back (the refinement's
`before`); a later round judges the refined version, whose verdict and scores are its own.

The sweep re-runs the score part of the gate at every `min_each`/`min_sum` pair over the
stored integer scores (`argmax`; a unit without scores is never accepted) and over the
expected scores (`expected`; units without them, i.e. no logprobs, are left out), with the
precision and recall of "gate accepts" against "humans accept" at each."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import binomtest

from ..agreement import cohen_kappa
from ..records import SCORE_DIMENSIONS, Triplet
from ..store import Store

SCHEMA = "coig-writer/review-calibration/1"
KINDS = ("argmax", "expected")
EPS = 1e-9  # float sums of expected scores compared against whole-number thresholds


@dataclass(frozen=True)
class Rules:
    """How reviewers' decisions become one human decision per item and round."""

    edits: Literal["accept", "reject"] = "accept"
    ties: Literal["reject", "skip"] = "reject"
    min_reviewers: int = 2

    def vote(self, decision: str) -> bool:
        """Whether a decision is a vote to accept (accept; edit unless `edits` is reject)."""
        return decision == "accept" or (decision == "edit" and self.edits == "accept")

    def majority(self, votes: Sequence[bool]) -> bool | None:
        """Accept when more votes are for than against; a tie per `ties` (None: skipped)."""
        yes = sum(votes)
        if 2 * yes == len(votes):
            return None if self.ties == "skip" else False
        return 2 * yes > len(votes)


@dataclass
class Unit:
    """One item in one review round: the gate's verdict and scores on the version the round
    judged, and the reviewers' latest decisions on it."""

    item_id: str
    round: int
    gate_status: str
    decisions: dict[str, str]
    human_accept: bool
    scores: dict[str, float] | None
    expected: dict[str, float] | None

    @property
    def gate_accept(self) -> bool:
        return self.gate_status == "accepted"

    def row(self) -> dict[str, Any]:
        return {"id": f"{self.item_id}#{self.round}", "item_id": self.item_id, "round": self.round,
                "gate_status": self.gate_status, "gate_accept": self.gate_accept,
                "human_accept": self.human_accept, "decisions": self.decisions,
                "score_sum": sum(self.scores.values()) if self.scores else None,
                "expected_sum": round(sum(self.expected.values()), 3) if self.expected else None}


# -- reading the store ----------------------------------------------------------------------------
def expected_of(t: Triplet) -> dict[str, float] | None:
    """The six expected scores, or None unless the server gave all of them."""
    e = t.expected_scores or {}
    return {d: float(e[d]) for d in SCORE_DIMENSIONS} if all(d in e for d in SCORE_DIMENSIONS) \
        else None


def judged_versions(t: Triplet, refs: dict[int, dict[str, Any]], last: int
                    ) -> dict[int, tuple[str, Triplet]]:
    """round -> (gate verdict, triplet) for rounds 0..last. Refinement r+1's `before` is the
    triplet round r judged; the current round judged `t`. A round opened by a failed
    refinement judged unchanged text, so it keeps the previous verdict when none is stored."""
    out: dict[int, tuple[str, Triplet]] = {}
    prev: str | None = None
    for rnd in range(last + 1):
        judged = Triplet.model_validate_json(refs[rnd + 1]["before"]) if rnd + 1 in refs else t
        status = judged.pipeline_status
        if status is None:
            failed = rnd in refs and refs[rnd]["status"] == "failed"
            status = prev if failed and prev else judged.status
        out[rnd] = (status, judged)
        prev = status
    return out


def read_units(store: Store, rules: Rules = Rules()) -> tuple[list[Unit], Counter[str]]:
    """Every reviewed (item, round) as a Unit, and how many were left out and why
    (unreviewed triplets, too_few_reviewers, tie)."""
    assigned = set(store.review.assignments())
    votes: dict[str, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for r in store.review.reviews():  # in id order: the last one per reviewer wins
        if (r["item_id"], r["reviewer"]) in assigned or r["round"] > 0:
            votes[r["item_id"]][r["round"]][r["reviewer"]] = r["decision"]
    refs: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for ref in store.review.refinements():
        refs[ref["item_id"]][ref["round"]] = ref
    units: list[Unit] = []
    skipped: Counter[str] = Counter()
    for t in store.construct.iter_triplets():
        rounds = votes.get(t.id)
        if not rounds:
            skipped["unreviewed"] += 1
            continue
        versions = judged_versions(t, refs.get(t.id, {}), max(rounds))
        for rnd in sorted(rounds):
            decided = dict(rounds[rnd])
            if len(decided) < rules.min_reviewers:
                skipped["too_few_reviewers"] += 1
                continue
            human = rules.majority([rules.vote(d) for d in decided.values()])
            if human is None:
                skipped["tie"] += 1
                continue
            status, judged = versions[rnd]
            scores = ({d: getattr(judged.scores, d) for d in SCORE_DIMENSIONS}
                      if judged.scores else None)
            units.append(Unit(t.id, rnd, status, decided, human, scores, expected_of(judged)))
    return units, skipped


# -- figures --------------------------------------------------------------------------------------
def wilson(k: int, n: int) -> list[float] | None:
    """The 95% Wilson interval of k successes in n (None for n = 0)."""
    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def confusion(pairs: Iterable[tuple[bool, bool]]) -> dict[str, int]:
    """tp/fp/fn/tn of (gate accepts, humans accept) pairs."""
    c = Counter(("t" if g == h else "f") + ("p" if g else "n") for g, h in pairs)
    return {k: c[k] for k in ("tp", "fp", "fn", "tn")}


def figures(c: dict[str, int]) -> dict[str, Any]:
    """Precision (of gate accepts), recall (of human accepts) and agreement with counts."""
    n = sum(c.values())
    return {**c, "n": n, "gate_accepted": c["tp"] + c["fp"], "human_accepted": c["tp"] + c["fn"],
            "agreement": ratio(c["tp"] + c["tn"], n), "precision": ratio(c["tp"], c["tp"] + c["fp"]),
            "recall": ratio(c["tp"], c["tp"] + c["fn"])}


def gate_figures(units: Sequence[Unit]) -> dict[str, Any]:
    """The gate's stored verdicts against the human majority, with Wilson intervals and kappa."""
    gate, human = [u.gate_accept for u in units], [u.human_accept for u in units]
    out = figures(confusion(zip(gate, human, strict=True)))
    out["precision_ci"] = wilson(out["tp"], out["gate_accepted"])
    out["recall_ci"] = wilson(out["tp"], out["human_accepted"])
    out["kappa"] = round(cohen_kappa(gate, human), 4) if units else None
    return out


# -- the threshold sweep --------------------------------------------------------------------------
def grid(kind: str) -> list[tuple[float, float]]:
    """(min_each, min_sum) pairs: whole numbers for argmax, min_each in halves for expected
    scores; min_sum from 6 x min_each (anything lower is implied) to 60."""
    each: list[float] = list(range(11)) if kind == "argmax" else [i / 2 for i in range(21)]
    n = len(SCORE_DIMENSIONS)
    return [(e, s) for e in each for s in range(int(np.ceil(n * e - EPS)), 10 * n + 1)]


def sweep(units: Sequence[Unit], kind: str) -> tuple[int, list[dict[str, Any]]]:
    """(units in the sweep, one row per grid point with its counts, precision and recall)."""
    pool = [(u.scores if kind == "argmax" else u.expected, u.human_accept) for u in units]
    if kind == "expected":
        pool = [p for p in pool if p[0] is not None]
    if not pool:
        return 0, []
    has = np.array([v is not None for v, _ in pool])
    vals = np.array([[(v or {}).get(d, 0.0) for d in SCORE_DIMENSIONS] for v, _ in pool])
    mins, sums = vals.min(axis=1), vals.sum(axis=1)
    human = np.array([h for _, h in pool])
    rows = []
    for e, s in grid(kind):
        gate = has & (mins >= e - EPS) & (sums >= s - EPS)
        c = {"tp": int((gate & human).sum()), "fp": int((gate & ~human).sum()),
             "fn": int((~gate & human).sum()), "tn": int((~gate & ~human).sum())}
        f = figures(c)
        rows.append({"min_each": e, "min_sum": s, "accepted": f["gate_accepted"], **c,
                     "precision": f["precision"], "recall": f["recall"]})
    return len(pool), rows


def loosest_first(row: dict[str, Any]) -> tuple[float, float]:
    return row["min_sum"], row["min_each"]


def best_at(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The thresholds with the highest recall among those whose precision reaches `target`
    (then the highest precision, then the loosest thresholds); None when none reach it."""
    ok = [r for r in rows if r["precision"] is not None and r["precision"] >= target - EPS]
    if not ok:
        return None
    return min(ok, key=lambda r: (-(r["recall"] or 0), -r["precision"], *loosest_first(r)))


def frontier(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows no other row beats on both precision and recall (the loosest thresholds of
    each), by recall from high to low."""
    seen: dict[tuple[float, float], dict[str, Any]] = {}
    for r in sorted((r for r in rows if r["precision"] is not None), key=loosest_first):
        seen.setdefault((r["precision"], r["recall"] or 0.0), r)
    out, top = [], -1.0
    for (p, _), r in sorted(seen.items(), key=lambda kv: (-kv[0][1], -kv[0][0])):
        if p > top:
            out.append(r)
            top = p
    return out


def sweep_report(units: Sequence[Unit], kind: str, target: float,
                 configured: tuple[float, float]) -> dict[str, Any]:
    n, rows = sweep(units, kind)
    at = next((r for r in rows if (r["min_each"], r["min_sum"]) == configured), None)
    return {"n": n, "best": best_at(rows, target), "at_configured": at,
            "frontier": frontier(rows), "rows": rows}


def calibrate(units: Sequence[Unit], skipped: Counter[str] | dict[str, int],
              rules: Rules = Rules(), target_precision: float = 0.9,
              configured: tuple[float, float] = (8, 50)) -> dict[str, Any]:
    """The calibration report (schema `SCHEMA`; fields in docs/review.md)."""
    conf = (configured[0], configured[1])
    return {"schema": SCHEMA, "rules": asdict(rules), "target_precision": target_precision,
            "configured": {"min_each": conf[0], "min_sum": conf[1]},
            "units": len(units), "skipped": dict(skipped), "gate": gate_figures(units),
            "sweeps": {k: sweep_report(units, k, target_precision, conf) for k in KINDS},
            "items": [u.row() for u in units]}


def calibration_of_store(store: Store, rules: Rules = Rules(), target_precision: float = 0.9,
                         configured: tuple[float, float] = (8, 50)) -> dict[str, Any]:
    """`calibrate` over the store's review decisions."""
    units, skipped = read_units(store, rules)
    return calibrate(units, skipped, rules, target_precision, configured)
