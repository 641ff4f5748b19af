"""`construct audit-gates`: does the gate tell a real triplet from a counterfactual variant?

The originals and their variants (`variants.build_variants`) go through the gate as one
executor job (`AuditJob`, a `GateJob`): cached and resumable like `construct gate`, on the local
or the Ray executor. Each group (the originals, each variant kind) is judged as a file of its
own would be: the checks that compare a reasoning with the other texts see the texts of the
group's rows, so a shuffled text is never compared with its own unshuffled original.

Verdicts are stored as the `gate` stage of item `gate:audit-<key>/<group>/<id>`, where `key`
hashes the construction config and the model: a rerun with the same config and model judges
only what is missing; another config or model judges afresh (the LLM answers still come from
the cache where the requests are the same). `audit_report.build_report` turns the verdicts into
the figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from ..llm import CachedBackend
from ..store import Store
from .audit_report import CI_METHOD, CI_ROUNDS, SCHEMA, build_report, row_of
from .calls import ItemContext
from .config import ConstructConfig
from .gate import Gate
from .gate_job import GateItem, GateJob
from .variants import KINDS, Skipped, Variant, build_variants, parse_kinds
from .verdict import Verdict

AUDIT_KIND = "audit_gate"
ORIGINAL = "original"


def audit_key(config: ConstructConfig, model_id: str) -> str:
    """A short hash of the config and model the verdicts belong to."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{blob}\x1f{model_id}".encode()).hexdigest()[:10]


def group_of(item: GateItem) -> str:
    """The group (`original` or a variant kind) of a job item (`audit-<key>/<group>/<id>`)."""
    return item.id.split("/", 2)[1]


def others_of(items: Sequence[GateItem]) -> list[str]:
    """The texts the checks compare with, as `GateJob.others` takes them for a file."""
    return list(dict.fromkeys(i.answer[:6000] for i in items))[:64]


class AuditJob(GateJob):
    """A gate job over groups of rows; each group's checks compare with its own texts."""

    kind = AUDIT_KIND

    def __init__(self, store: Store, llm: CachedBackend, config: ConstructConfig,
                 groups: dict[str, list[GateItem]] | None = None, run_id: str | None = None,
                 key: str = "", others: dict[str, list[str]] | None = None):
        self.key = key
        groups = groups or {}
        items = [self.wrap(g, i) for g, rows in groups.items() for i in rows]
        super().__init__(store, llm, config, items, run_id=run_id, others=[])
        if others is None:  # groups whose texts are the originals' share their list
            base = others_of(groups.get(ORIGINAL, []))
            others = {ORIGINAL: base}
            others |= {g: o for g, rows in groups.items() if (o := others_of(rows)) != base}
        self.others_by_group = others
        self.gates = {g: Gate(self.caller, o) for g, o in others.items()}

    def wrap(self, group: str, item: GateItem) -> GateItem:
        return item.model_copy(update={"id": f"audit-{self.key}/{group}/{item.id}"})

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config.model_dump(), "run_id": self.run_id,
                "key": self.key, "others": self.others_by_group}

    async def judge(self, item: GateItem) -> Verdict:
        ctx = ItemContext(item_id=item.item_id, run_id=self.run_id or "audit",
                          article=item.answer[:self.config.max_article_chars], title=item.title,
                          author=item.author, genre=item.genre)
        gate = self.gates.get(group_of(item), self.gates[ORIGINAL])
        return await gate.judge(ctx, 0, item.query, item.thought)


def audit_job(spec: dict[str, Any], store: Store, llm: CachedBackend) -> AuditJob:
    """Rebuild the job on a worker (`executors.base.register_job`)."""
    return AuditJob(store, llm, ConstructConfig.model_validate(spec["config"]),
                    run_id=spec.get("run_id"), key=spec.get("key", ""),
                    others=spec.get("others"))


def items_of_store(store: Store, status: str) -> tuple[list[GateItem], list[str]]:
    """The stored triplets of `status` as gate rows, and the ids left out (no prompt or no
    reasoning to judge)."""
    items, left = [], []
    for t in store.construct.iter_triplets(status):
        if not t.query.strip() or not t.thought.strip():
            left.append(t.id)
            continue
        items.append(GateItem(id=t.id, query=t.query, thought=t.thought, answer=t.answer,
                              title=t.provenance.title or "", author=t.provenance.author or "",
                              genre=t.genre, category=t.category, origin=f"store:{t.id}"))
    return items, left


def example_of(v: Variant, original: GateItem) -> dict[str, str]:
    """What a variant changed, shortened for the report."""
    field = {"prompt": "query", "reasoning": "thought", "text": "answer"}[KINDS[v.kind].changes]
    return {"id": v.item.id, "field": field, "original": getattr(original, field)[:300],
            "variant": getattr(v.item, field)[:300]}


class Audit:
    """The originals, their variants and the job that judges them all."""

    def __init__(self, store: Store, llm: CachedBackend, config: ConstructConfig,
                 originals: list[GateItem], kinds: Sequence[str] | None = None, seed: int = 0,
                 run_id: str | None = None):
        self.config, self.seed, self.originals = config, seed, originals
        self.kinds = parse_kinds(kinds)
        self.variants, self.skipped = build_variants(originals, self.kinds, seed,
                                                     config.template_dir)
        groups: dict[str, list[GateItem]] = {ORIGINAL: list(originals)}
        for k in self.kinds:
            groups[k] = [v.item for v in self.variants if v.kind == k]
        self.key = audit_key(config, llm.model_id)
        self.job = AuditJob(store, llm, config, groups, run_id=run_id, key=self.key)

    def rows(self) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]], int]:
        """Report rows of the judged originals and of each kind's judged variants, and how many
        items are not judged yet."""
        cfg, job = self.config, self.job
        pending = 0

        def judged(group: str, item: GateItem, kind: str | None, of: str) -> dict | None:
            nonlocal pending
            v = job.verdict(job.wrap(group, item))
            if v is None:
                pending += 1
                return None
            return row_of(v, item.id, kind, of, cfg.min_each, cfg.min_sum)

        orig = [r for i in self.originals if (r := judged(ORIGINAL, i, None, i.id))]
        var = {k: [r for v in self.variants if v.kind == k
                   and (r := judged(k, v.item, k, v.of))] for k in self.kinds}
        return orig, var, pending

    def report(self, **extra: Any) -> dict[str, Any]:
        """The documented JSON report (`extra`: input and run details)."""
        cfg = self.config
        orig, var, pending = self.rows()
        by_id = {i.id: i for i in self.originals}
        examples = {}
        for v in self.variants:
            examples.setdefault(v.kind, example_of(v, by_id[v.of]))
        skipped: dict[str, list[dict[str, str]]] = {}
        for s in self.skipped:
            skipped.setdefault(s.kind, []).append({"of": s.of, "why": s.why})
        body = build_report(orig, var, KINDS, rule=cfg.score_rule, seed=self.seed,
                            skipped=skipped, examples=examples)
        rows = orig + [r for k in self.kinds for r in var[k]]
        return {"schema": SCHEMA, **extra, "seed": self.seed, "key": self.key,
                "score_rule": cfg.score_rule,
                "thresholds": {"min_each": cfg.min_each, "min_sum": cfg.min_sum,
                               "reject_below": cfg.reject_below},
                "ci": {"method": CI_METHOD, "rounds": CI_ROUNDS, "level": 0.95},
                "pending": pending, **body, "rows": rows}


def skipped_lines(skipped: Sequence[Skipped]) -> list[str]:
    return [f"{s.kind} of {s.of}: {s.why}" for s in skipped]

