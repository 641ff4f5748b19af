"""Review logic over the store: assignment, decisions, versioned edits, item status,
blind ranking tasks, agreement statistics and export."""

from __future__ import annotations

import difflib
import itertools
import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from ..agreement import cohen_kappa, krippendorff_alpha
from ..records import Judgment, Triplet
from ..store import Store

DECISIONS = ("accept", "reject", "edit", "send_back")
EDITABLE = ("query", "thought", "answer")
# what a send-back may ask the model to redo -> the triplet field it changes
REFINABLE = {"prompt": "query", "reasoning": "thought"}


class EditConflict(RuntimeError):
    """Someone saved a newer version of the item first."""


class UnsavedEdit(ValueError):
    """The text was changed but the decision was not "edit": refuse, keep what was typed."""


@dataclass
class ReviewPolicy:
    """How many reviewers an item needs: `k` by default, more for specialist genres; after a
    refinement the item goes back to the `same` reviewers, or to `any` k reviewers."""

    k: int = 2
    per_genre: dict[str, int] | None = None
    rereview: str = "same"

    def needed(self, t: Triplet) -> int:
        """Reviewers for `t`: by its genre key, else its category key, else `k`."""
        per = self.per_genre or {}
        return per.get(t.genre or "", per.get(t.category or "", self.k))


def save_policy(store: Store, policy: ReviewPolicy) -> None:
    """Remember the policy the app runs with, so exports judge acceptance the same way."""
    store.review.put_setting("policy", json.dumps(asdict(policy)))


def load_policy(store: Store) -> ReviewPolicy:
    raw = store.review.get_setting("policy")
    return ReviewPolicy(**json.loads(raw)) if raw else ReviewPolicy()


def unified(old: str, new: str, a: str, b: str) -> str:
    """A unified diff of two texts, one line per line whether or not a text ends in a newline."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), a, b, lineterm=""))
    return "\n".join(lines) + "\n" if lines else ""


def assign_reviews(store: Store, policy: ReviewPolicy, statuses: tuple[str, ...] = ("needs_review",
                                                                                     "accepted")
                   ) -> int:
    """Give every item `policy.needed` distinct reviewers, least-loaded first; returns how many
    new assignments were made. Items already assigned keep their reviewers."""
    reviewers = [u["username"] for u in store.auth.users("reviewer")]
    if not reviewers:
        raise ValueError("no reviewers: add users with role reviewer first")
    load = Counter(r for _, r in store.review.assignments())
    have: dict[str, set[str]] = defaultdict(set)
    for item, r in store.review.assignments():
        have[item].add(r)
    made = 0
    for t in (t for s in statuses for t in store.construct.iter_triplets(s)):
        need = min(policy.needed(t), len(reviewers)) - len(have[t.id])
        free = sorted((r for r in reviewers if r not in have[t.id]), key=lambda r: (load[r], r))
        for r in free[: max(0, need)]:
            if store.review.assign(t.id, r):
                have[t.id].add(r)
                load[r] += 1
                made += 1
    return made


def may_decide(store: Store, item_id: str, username: str, role: str, policy: ReviewPolicy) -> bool:
    """Admins may review anything; reviewers what is assigned to them, and (policy `any`) any
    item in a re-review round."""
    if role == "admin" or (item_id, username) in set(store.review.assignments(item_id=item_id)):
        return True
    return role == "reviewer" and policy.rereview == "any" and store.review.review_round(item_id) > 0


@dataclass
class Head:
    """What status and queues need of a triplet, without its texts."""

    id: str
    status: str
    category: str | None
    genre: str | None


class Snapshot:
    """Reviews, assignments, rounds and roles read once (for one item, or all), so that queues
    and the admin page cost a few queries however many items there are."""

    def __init__(self, store: Store, item_id: str | None = None):
        self.reviews: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in store.review.reviews(item_id):
            self.reviews[r["item_id"]].append(r)
        self.assigned: dict[str, set[str]] = defaultdict(set)
        for item, who in store.review.assignments(item_id=item_id):
            self.assigned[item].add(who)
        self.rounds = ({item_id: store.review.review_round(item_id)} if item_id
                       else store.review.review_rounds())
        self.roles = {u["username"]: u["role"] for u in store.auth.users()}

    def round(self, item_id: str) -> int:
        return self.rounds.get(item_id, 0)

    def counted(self, item_id: str, policy: ReviewPolicy) -> dict[str, dict[str, Any]]:
        """The latest decision per reviewer in the current round that counts toward k:
        assigned reviewers (admins only when assigned), or any reviewer in a re-review under
        policy `any`."""
        rnd = self.round(item_id)
        out = {}
        for r in self.reviews[item_id]:
            who = r["reviewer"]
            if r["round"] == rnd and (who in self.assigned[item_id] or (
                    policy.rereview == "any" and rnd > 0 and self.roles.get(who) == "reviewer")):
                out[who] = r
        return out

    def status(self, t: Triplet | Head, policy: ReviewPolicy) -> str:
        if t.status == "refining":
            return "refining"
        latest = self.counted(t.id, policy)
        if len(latest) < policy.needed(t):  # type: ignore[arg-type]
            return "pending"
        votes = {"reject" if r["decision"] == "reject" else "accept" for r in latest.values()}
        return "disputed" if len(votes) > 1 else ("rejected" if votes == {"reject"} else
                                                  "accepted")

    def decided(self, item_id: str, reviewer: str) -> bool:
        """Whether `reviewer` decided the item in its current round."""
        rnd = self.round(item_id)
        return any(r["reviewer"] == reviewer and r["round"] == rnd
                   for r in self.reviews[item_id])


def latest_reviews(store: Store, item_id: str, policy: ReviewPolicy | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Each counted reviewer's latest decision on the item in its current round."""
    return Snapshot(store, item_id).counted(item_id, policy or ReviewPolicy())


def item_status(store: Store, t: Triplet, policy: ReviewPolicy) -> str:
    """refining (sent back, the model is working), pending (fewer counted decisions than
    needed in the current round), accepted (all accept or edit), rejected (all reject), or
    disputed (reviewers disagree)."""
    return Snapshot(store, t.id).status(t, policy)


def statuses(store: Store, policy: ReviewPolicy) -> dict[str, tuple[Head, str, int]]:
    """id -> (head, review status, counted decisions) for every triplet, in a few queries."""
    snap = Snapshot(store)
    out = {}
    for row in store.construct.triplet_heads():
        h = Head(*row)
        out[h.id] = (h, snap.status(h, policy), len(snap.counted(h.id, policy)))
    return out


def human_accepted_ids(store: Store, policy: ReviewPolicy) -> set[str]:
    """Ids of the triplets that k reviewers accepted in the current round."""
    return {i for i, (_, st, _) in statuses(store, policy).items() if st == "accepted"}


def acceptance_counts(store: Store, policy: ReviewPolicy) -> dict[str, int]:
    """Pipeline verdicts against human review: how many each accepted, and both."""
    out: Counter[str] = Counter()
    by_id = statuses(store, policy)
    for t in store.construct.iter_triplets():
        pipe = (t.pipeline_status or t.status) == "accepted"
        human = by_id[t.id][1]
        out["pipeline_accepted"] += pipe
        out["human_accepted"] += human == "accepted"
        out["both_accepted"] += pipe and human == "accepted"
        out[f"review_{human}"] += 1
    return dict(out)


def queue(store: Store, reviewer: str, policy: ReviewPolicy) -> list[dict[str, Any]]:
    """The reviewer's items (assigned, plus open re-reviews under policy `any`) with genre,
    category, review status and whether this reviewer is done with the current round."""
    snap = Snapshot(store)
    mine = [i for i, _ in store.review.assignments(reviewer)]
    assigned = set(mine)
    items = mine
    if policy.rereview == "any":
        items = mine + sorted(i for i, n in snap.rounds.items() if n > 0 and i not in assigned)
    heads = {row[0]: Head(*row) for row in store.construct.triplet_heads(items)}
    out = []
    for h in (heads[i] for i in items if i in heads):
        st = snap.status(h, policy)
        done = snap.decided(h.id, reviewer)
        if h.id not in assigned and (st != "pending" or done):
            continue
        out.append({"id": h.id, "genre": h.genre, "category": h.category, "status": st,
                    "done": done, "round": snap.round(h.id)})
    return out


def progress(items: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(i["done"] for i in items), len(items)


def next_item(store: Store, reviewer: str, policy: ReviewPolicy | None = None,
              filters: dict[str, str] | None = None) -> str | None:
    """The reviewer's next undecided item that is not being refined, matching `filters`
    (status, genre, category; empty values match all)."""
    f = {k: v for k, v in (filters or {}).items() if v}
    items = queue(store, reviewer, policy or ReviewPolicy())
    for i in sorted(items, key=lambda i: -i["round"]):  # items back from refinement first
        if i["done"] or i["status"] != "pending":  # decided, refining, or enough votes
            continue
        if all(str(i.get(k)) == v for k, v in f.items()):
            return str(i["id"])
    return None


def decide(store: Store, item_id: str, reviewer: str, decision: str, reason: str,
           expected_version: int, policy: ReviewPolicy,
           edits: dict[str, str] | None = None, fields: list[str] | None = None,
           address: str | None = None) -> str:
    """Record a decision (an edit is saved as a new version first; a send-back opens a
    refinement request); returns the item status. Raises EditConflict when the item changed
    since the reviewer loaded it, and UnsavedEdit when the text was changed but the decision
    is not "edit" (nothing typed is dropped silently)."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}")
    if decision == "reject" and not reason.strip():
        raise ValueError("a rejection needs a reason")
    if decision == "send_back" and not reason.strip():
        raise ValueError("sending back needs feedback: what is wrong and what to change")
    fields = [f for f in (fields or list(REFINABLE)) if f]
    if any(f not in REFINABLE for f in fields):
        raise ValueError(f"fields to refine are {tuple(REFINABLE)}")
    t = store.construct.get_triplet(item_id)
    if t is None:
        raise KeyError(item_id)
    if t.status == "refining":
        raise ValueError("this item is being refined by the model; it comes back when done")
    version = store.review.triplet_version(item_id)
    if version != expected_version:
        raise EditConflict(f"{item_id} is at version {version}; you reviewed {expected_version}")
    changed = {f: v.replace("\r\n", "\n") for f, v in (edits or {}).items()
               if f in EDITABLE and v.replace("\r\n", "\n") != getattr(t, f)}
    if changed and decision != "edit":
        raise UnsavedEdit("you changed the text but chose " + repr(decision) + "; choose "
                          "'accept with my edits' to save it, or undo the changes")
    rnd = store.review.review_round(item_id)
    if decision == "send_back":
        if t.pipeline_status is None:  # keep the pipeline's verdict before "refining" hides it
            t.pipeline_status = t.status
        if store.review.send_back(t, reviewer, reason.strip(), fields, version, rnd) is None:
            raise EditConflict(f"{item_id} changed or was sent back meanwhile; reload it")
        store.auth.audit(reviewer, "decision", item_id, f"send_back v{version} round {rnd}", address)
        return "refining"
    if decision == "edit":
        if not changed:
            raise ValueError("an edit must change the prompt, reasoning or text")
        diff = "".join(unified(getattr(t, f), new, f"{f}@v{version}", f"{f}@v{version + 1}")
                       for f, new in changed.items())
        for f, new in changed.items():
            setattr(t, f, new)
        saved = store.review.save_edit(t, version, reviewer, diff)
        if saved is None:
            raise EditConflict(f"{item_id} was edited by someone else; reload it")
        version = saved
    store.review.add_review(item_id, reviewer, decision, reason.strip(), version, rnd)
    store.auth.audit(reviewer, "decision", item_id, f"{decision} v{version} round {rnd}", address)
    status = item_status(store, t, policy)
    t = store.construct.get_triplet(item_id) or t
    if t.pipeline_status is None:
        t.pipeline_status = t.status
    t.review_status = status
    if status in ("accepted", "rejected"):
        t.status = status  # type: ignore[assignment]
        t.reasons.append(f"human review: {status}")
    store.construct.put_triplet(t)
    return status


def visible_reviews(store: Store, item_id: str, username: str, role: str
                    ) -> list[dict[str, Any]]:
    """Decisions a user may see: all for admins; for others, earlier rounds, and the current
    round only once they have decided in it themselves (no anchoring on others' votes)."""
    rnd = store.review.review_round(item_id)
    revs = store.review.reviews(item_id)
    if role == "admin" or any(r["reviewer"] == username and r["round"] == rnd for r in revs):
        return revs
    return [r for r in revs if r["round"] < rnd or r["reviewer"] == username]


def analyses(store: Store, t: Triplet) -> dict[str, Any]:
    """The LLM analyses of the item as plain fields: screen, validation, score comment."""
    comment = ""
    for s in store.construct.stages_for(t.source_id or t.id):  # stage results are keyed by source
        if s.stage == "score" and s.ok:
            comment = str(s.output.get("comment", ""))
    v = t.validation or {}
    return {"screen": {k: t.screen.get(k) for k in ("quality", "creativity", "category", "genre",
                                                    "reason") if t.screen.get(k) not in (None, "")},
            "coherent": v.get("coherent"), "issues": list(v.get("issues") or []),
            "suggestion": v.get("suggestion") or "", "score_comment": comment}


def rereview(store: Store, t: Triplet, username: str) -> dict[str, Any] | None:
    """For an item back from refinement: the feedback, the refinement's outcome, and per-field
    diffs and scores between the version this user judged (else the one sent back) and now."""
    rnd = store.review.review_round(t.id)
    if rnd == 0:
        return None
    ref = next((r for r in store.review.refinements(t.id) if r["round"] == rnd), None)
    if ref is None:
        return None
    mine = [r for r in store.review.reviews(t.id) if r["reviewer"] == username and r["round"] < rnd]
    judged = mine[-1]["version"] if mine else ref["from_version"]
    before = (Triplet.model_validate_json(ref["before"]) if judged == ref["from_version"]
              else store.review.version_data(t.id, judged)) or Triplet.model_validate_json(ref["before"])
    now = store.review.triplet_version(t.id)
    diffs = {f: unified(getattr(before, f), getattr(t, f), f"{f}@v{judged}", f"{f}@v{now}")
             for f in EDITABLE}
    return {"refinement": ref, "judged": judged, "version": now,
            "diffs": {f: d for f, d in diffs.items() if d},
            "scores_before": before.scores.model_dump() if before.scores else None,
            "scores_after": t.scores.model_dump() if t.scores else None,
            "total_before": before.scores.total if before.scores else None,
            "total_after": t.scores.total if t.scores else None}


def history(store: Store, item_id: str) -> list[dict[str, Any]]:
    """Every round: its decisions, and the refinement that ended it (who asked what, what the
    model changed)."""
    revs = store.review.reviews(item_id)
    refs = {r["round"]: r for r in store.review.refinements(item_id)}
    diffs = {v["version"]: v for v in store.review.versions(item_id)}
    rounds = sorted({r["round"] for r in revs} | {r - 1 for r in refs} | {0})
    out = []
    for n in rounds:
        ref = refs.get(n + 1)
        out.append({"round": n, "reviews": [r for r in revs if r["round"] == n],
                    "refinement": ref,
                    "change": diffs.get(ref["to_version"]) if ref and ref["to_version"] else None})
    return out


# -- blind ranking ----------------------------------------------------------------------------
def task_models(store: Store, prompt_id: str) -> list[str]:
    """The models that answered one prompt, when there are 2+ to rank; else []."""
    models = sorted(g.model for g in store.evaluation.generations(prompt_id=prompt_id))
    return models if len(models) >= 2 else []


def ranking_tasks(store: Store) -> dict[str, list[str]]:
    """prompt id -> models that answered it (prompts with 2+ answers)."""
    by: dict[str, list[str]] = defaultdict(list)
    for g in store.evaluation.generations():
        by[g.prompt_id].append(g.model)
    return {p: sorted(ms) for p, ms in by.items() if len(ms) >= 2}


def blind_order(rater: str, prompt_id: str, models: list[str]) -> list[str]:
    """A per-rater, per-prompt random order: stable across visits, different between raters."""
    order = sorted(models)
    random.Random(f"{rater}\x00{prompt_id}").shuffle(order)
    return order


def next_ranking(store: Store, rater: str) -> str | None:
    done = {j.prompt_id for j in store.evaluation.judgments(source="human", judge=rater)}
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
    if any(r != int(r) or not 1 <= r <= len(order) for r in ranks_by_slot.values()):
        raise ValueError(f"ranks are whole numbers from 1 to {len(order)}")
    j = Judgment(prompt_id=prompt_id, kind="rank", models=sorted(models), source="human",
                 judge=rater, ranks={order[s]: float(r) for s, r in ranks_by_slot.items()})
    store.evaluation.put_judgment(j)
    return j


# -- agreement and export ---------------------------------------------------------------------
def agreement_stats(store: Store) -> dict[str, Any]:
    """Krippendorff's alpha and pairwise Cohen's kappa between reviewers (accept, reject or
    send back per item and round; an edit counts as accept) and between raters (pairwise
    preferences from rankings)."""
    decisions: dict[str, dict[str, str]] = defaultdict(dict)
    assigned = set(store.review.assignments())
    for r in store.review.reviews():  # one unit per item and round; unassigned admins do not count
        if (r["item_id"], r["reviewer"]) in assigned or r["round"] > 0:
            decisions[f"{r['item_id']}#{r['round']}"][r["reviewer"]] = (
                r["decision"] if r["decision"] in ("reject", "send_back") else "accept")
    out: dict[str, Any] = {"reviewers": {
        "items": len(decisions),
        "alpha": krippendorff_alpha({i: list(d.values()) for i, d in decisions.items()}),
        "kappa": _pairwise_kappa(decisions)}}
    prefs: dict[str, dict[str, str]] = defaultdict(dict)
    for j in store.evaluation.judgments(source="human"):
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
    """Every item's final text, pipeline and human verdicts, and its full history: decisions
    per round, refinements (feedback, model, cache keys) and versions with diffs."""
    items = []
    by_id = statuses(store, policy)
    for t in store.construct.iter_triplets():
        items.append({"id": t.id, "genre": t.genre, "status": by_id[t.id][1],
                      "pipeline_status": t.pipeline_status or t.status,
                      "version": store.review.triplet_version(t.id), "round": store.review.review_round(t.id),
                      "query": t.query, "thought": t.thought, "answer": t.answer,
                      "scores": t.scores.model_dump() if t.scores else None,
                      "reviews": store.review.reviews(t.id), "versions": store.review.versions(t.id),
                      "refinements": [{k: v for k, v in r.items() if k != "before"}
                                      for r in store.review.refinements(t.id)]})
    return {"items": items, "rankings": [j.model_dump() for j in store.evaluation.judgments(source="human")],
            "agreement": agreement_stats(store), "acceptance": acceptance_counts(store, policy)}


USEFULNESS_FIELDS = ("nll_prompt", "nll_own", "nll_control", "gain", "gain_vs_control",
                     "control_id", "scorer", "template_hash", "version")


def usefulness_fields(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The usefulness figures a reviewer reads (clipped mean NLLs, gains, scorer), rounded."""
    if not row:
        return None
    out = {}
    for k in USEFULNESS_FIELDS:
        v = row.get(k)
        if v is None:
            continue
        out[k] = round(v, 3) if isinstance(v, float) else (str(v)[:12] if k == "template_hash"
                                                           else v)
    return out or None
