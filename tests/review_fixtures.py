"""A store with users, triplets (one carrying injected HTML) and model outputs to rank."""

from __future__ import annotations

from pathlib import Path

from coig_writer.evaluate.prompt_sets import add_prompt_set
from coig_writer.records import Generation, Provenance, Triplet
from coig_writer.review.auth import add_user
from coig_writer.review.service import ReviewPolicy, assign_reviews
from coig_writer.store import Store

PASSWORD = "correct horse battery"
EVIL = "<script>window.__pwned = 1; alert('xss')</script><img src=x onerror=\"window.__pwned=2\">"
POLICY = ReviewPolicy(k=2, per_genre={"poetry": 3})


def build(db: Path) -> None:
    with Store(db) as s:
        for name, role in (("admin", "admin"), ("rev1", "reviewer"), ("rev2", "reviewer"),
                           ("rev3", "reviewer"), ("rater1", "rater"), ("rater2", "rater")):
            add_user(s, name, PASSWORD, role)
        s.put_triplet(Triplet(id="cw-1", query="写一首秋天的诗", thought="用户想要秋天……",
                              answer="秋风起兮白云飞。", category="poetry", genre="classical_shi",
                              provenance=Provenance(source_url="https://example.org/1")))
        s.put_triplet(Triplet(id="cw-2", query="写一个故事", thought="首先我需要……",
                              answer="从前有一座山。" + EVIL, category="novel", genre="fantasy"))
        s.put_triplet(Triplet(id="cw-3", query="写一封信", thought="用户想要一封信",
                              answer="亲爱的朋友：你好。", category="communication", genre="letter"))
        assign_reviews(s, POLICY)
        add_prompt_set(s, "bundled-zh")
        for p in s.eval_prompts()[:2]:
            for m in ("model-a", "model-b", "model-c"):
                text = f"第{m[-1]}种回答：{p.id}" + (EVIL if m == "model-b" else "")
                s.put_generation(Generation(model=m, prompt_id=p.id, raw=text, answer=text))
