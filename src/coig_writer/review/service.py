"""Review logic over the store: assignment, decisions, versioned edits, item status,
blind ranking tasks, agreement statistics and export."""

from __future__ import annotations

import difflib
import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from ..agreement import cohen_kappa, krippendorff_alpha
from ..records import Judgment, Triplet
from ..store import Store

DECISIONS = ("accept", "reject", "edit")
EDITABLE = ("query", "thought", "answer")


class EditConflict(RuntimeError):
    """Someone saved a newer version of the item first."""


@dataclass
class ReviewPolicy:
    """How many reviewers an item needs: `k` by default, more for specialist genres."""

    k: int = 2
    per_genre: dict[str, int] | None = None

    def needed(self, t: Triplet) -> int:
        """Reviewers for `t`: by its genre key, else its category key, else `k`."""
        per = self.per_genre or {}
        return per.get(t.genre or "", per.get(t.category or "", self.k))


def assign_reviews(store: Store, policy: ReviewPolicy, statuses: tuple[str, ...] = ("needs_review",
                                                                                     "accepted")
                   ) -> int:
    """Give every item `policy.needed` distinct reviewers, least-loaded first; returns how many
    new assignments were made. Items already assigned keep their reviewers."""
    reviewers = [u["username"] for u in store.users("reviewer")]
    if not reviewers:
        raise ValueError("no reviewers: add users with role reviewer first")
    load = Counter(r for _, r in store.assignments())
    have: dict[str, set[str]] = defaultdict(set)
    for item, r in store.assignments():
        have[item].add(r)
    made = 0
    for t in (t for s in statuses for t in store.iter_triplets(s)):
        need = min(policy.needed(t), len(reviewers)) - len(have[t.id])
        free = sorted((r for r in reviewers if r not in have[t.id]), key=lambda r: (load[r], r))
        for r in free[: max(0, need)]:
            if store.assign(t.id, r):
                have[t.id].add(r)
                load[r] += 1
                made += 1
    return made


def latest_reviews(store: Store, item_id: str) -> dict[str, dict[str, Any]]:
    """Each reviewer's latest decision on the item."""
    return {r["reviewer"]: r for r in store.reviews(item_id)}


def item_status(store: Store, t: Triplet, policy: ReviewPolicy) -> str:
    """pending (fewer decisions than needed), accepted (all accept or edit), rejected (all
    reject), or disputed (reviewers disagree)."""
    latest = latest_reviews(store, t.id)
    if len(latest) < policy.needed(t):
        return "pending"
    votes = {"reject" if r["decision"] == "reject" else "accept" for r in latest.values()}
    return "disputed" if len(votes) > 1 else ("rejected" if votes == {"reject"} else "accepted")


def next_item(store: Store, reviewer: str) -> str | None:
    done = {r["item_id"] for r in store.reviews() if r["reviewer"] == reviewer}
    return next((item for item, _ in store.assignments(reviewer) if item not in done), None)


def decide(store: Store, item_id: str, reviewer: str, decision: str, reason: str,
           expected_version: int, policy: ReviewPolicy,
           edits: dict[str, str] | None = None) -> str:
    """Record a decision (an edit is saved as a new version first); returns the item status.
    Raises EditConflict when the item changed since the reviewer loaded it."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}")
    if decision == "reject" and not reason.strip():
        raise ValueError("a rejection needs a reason")
    t = store.get_triplet(item_id)
    if t is None:
        raise KeyError(item_id)
    version = store.triplet_version(item_id)
    if version != expected_version:
        raise EditConflict(f"{item_id} is at version {version}; you reviewed {expected_version}")
    if decision == "edit":
        changed = {f: v.replace("\r\n", "\n") for f, v in (edits or {}).items()
                   if f in EDITABLE and v.replace("\r\n", "\n") != getattr(t, f)}
        if not changed:
            raise ValueError("an edit must change the prompt, reasoning or text")
        diff = "".join(d for f, new in changed.items() for d in difflib.unified_diff(
            getattr(t, f).splitlines(keepends=True), new.splitlines(keepends=True),
            f"{f}@v{version}", f"{f}@v{version + 1}"))
        for f, new in changed.items():
            setattr(t, f, new)
        saved = store.save_edit(t, version, reviewer, diff)
        if saved is None:
            raise EditConflict(f"{item_id} was edited by someone else; reload it")
        version = saved
    store.add_review(item_id, reviewer, decision, reason.strip(), version)
    status = item_status(store, t, policy)
    if status in ("accepted", "rejected"):
        t = store.get_triplet(item_id) or t
        t.status = status  # type: ignore[assignment]
        t.reasons.append(f"human review: {status}")
        store.put_triplet(t)
    return status


# -- blind ranking ----------------------------------------------------------------------------
def task_models(store: Store, prompt_id: str) -> list[str]:
    """The models that answered one prompt, when there are 2+ to rank; else []."""
    models = sorted(g.model for g in store.generations(prompt_id=prompt_id))
    return models if len(models) >= 2 else []


def ranking_tasks(store: Store) -> dict[str, list[str]]:
    """prompt id -> models that answered it (prompts with 2+ answers)."""
    by: dict[str, list[str]] = defaultdict(list)
    for g in store.generations():
        by[g.prompt_id].append(g.model)
    return {p: sorted(ms) for p, ms in by.items() if len(ms) >= 2}


def blind_order(rater: str, prompt_id: str, models: list[str]) -> list[str]:
    """A per-rater, per-prompt random order: stable across visits, different between raters."""
    order = sorted(models)
    random.Random(f"{rater}\x00{prompt_id}").shuffle(order)
    return order


def next_ranking(store: Store, rater: str) -> str | None:
    done = {j.prompt_id for j in store.judgments(source="human", judge=rater)}
    return next((p for p in ranking_tasks(store) if p not in done), None)


def save_ranking(store: Store, rater: str, prompt_id: str, ranks_by_slot: dict[int, float],
                 allow_ties: bool = True) -> Judgment:
    """Store a ranking given per display slot (0-based) -> rank (1 best)."""
    models = task_models(store, prompt_id)
    if not models:
        raise KeyError(prompt_id)
    order = blind_order(rater, prompt_id, models)
    if sorted(ranks_by_slot) != list(range(len(order))):
        raise ValueError("rank every output")
    if not allow_ties and len(set(ranks_by_slot.values())) != len(order):
        raise ValueError("ties are not allowed")
    if any(not 1 <= r <= len(order) for r in ranks_by_slot.values()):
        raise ValueError(f"ranks go from 1 to {len(order)}")
    j = Judgment(prompt_id=prompt_id, kind="rank", models=sorted(models), source="human",
                 judge=rater, ranks={order[s]: float(r) for s, r in ranks_by_slot.items()})
    store.put_judgment(j)
    return j


# -- agreement and export ---------------------------------------------------------------------
def agreement_stats(store: Store) -> dict[str, Any]:
    """Krippendorff's alpha and pairwise Cohen's kappa between reviewers (accept vs reject,
    an edit counts as accept) and between raters (pairwise preferences from rankings)."""
    decisions: dict[str, dict[str, str]] = defaultdict(dict)
    for r in store.reviews():
        decisions[r["item_id"]][r["reviewer"]] = "reject" if r["decision"] == "reject" else "accept"
    out: dict[str, Any] = {"reviewers": {
        "items": len(decisions),
        "alpha": krippendorff_alpha({i: list(d.values()) for i, d in decisions.items()}),
        "kappa": _pairwise_kappa(decisions)}}
    prefs: dict[str, dict[str, str]] = defaultdict(dict)
    for j in store.judgments(source="human"):
        for a, b in itertools.combinations(sorted(j.ranks), 2):
            ra, rb = j.ranks[a], j.ranks[b]
            prefs[f"{j.prompt_id}|{a}|{b}"][j.judge] = "a" if ra < rb else "b" if rb < ra else "tie"
    out["raters"] = {"units": len(prefs),
                     "alpha": krippendorff_alpha({u: list(d.values()) for u, d in prefs.items()}),
                     "kappa": _pairwise_kappa(prefs)}
    return out


def _pairwise_kappa(labels: dict[str, dict[str, str]]) -> dict[str, float]:
    people = sorted({p for d in labels.values() for p in d})
    out = {}
    for a, b in itertools.combinations(people, 2):
        common = [u for u, d in labels.items() if a in d and b in d]
        if len(common) >= 2:
            out[f"{a}~{b}"] = cohen_kappa([labels[u][a] for u in common],
                                          [labels[u][b] for u in common])
    return out


def export_decisions(store: Store, policy: ReviewPolicy) -> dict[str, Any]:
    items = []
    for t in store.iter_triplets():
        items.append({"id": t.id, "genre": t.genre, "status": item_status(store, t, policy),
                      "reviews": store.reviews(t.id), "versions": store.versions(t.id)})
    return {"items": items, "rankings": [j.model_dump() for j in store.judgments(source="human")],
            "agreement": agreement_stats(store)}
