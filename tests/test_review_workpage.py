"""The reviewer's work page through HTTP: analyses as fields, progress, queue filters,
per-genre guidelines, the shortcut script under the CSP, and the usefulness slot."""

import re

import pytest

from coig_writer.store import Store

from .review_fixtures import build
from .test_review_hardening import assigned, client, login


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "review.sqlite"
    build(path)
    with Store(path) as s:
        t = s.construct.get_triplet("cw-3")
        t.screen = {"quality": 7, "creativity": 6, "category": "communication", "genre": "letter",
                    "reason": "语言朴素"}
        s.construct.put_triplet(t)
    return path


def mine(db, reviewer) -> set[str]:
    with Store(db) as s:
        return {i for i, _ in s.review.assignments(reviewer)}


def test_analyses_are_fields_and_progress_counts(db):
    rev = assigned(db, "cw-3")[0]
    c = client(db)
    token = login(c, rev)
    page = c.get("/review/cw-3").text
    assert "{&#39;" not in page and "{'" not in page  # no Python dict text
    assert re.search(r'id="an-screen">quality: 7 · creativity: 6 · category: communication', page)
    assert '<ul id="an-issues"><li>指令过于笼统</li></ul>' in page
    assert 'id="an-suggestion">写明收信人和情境' in page and 'id="an-coherent">yes' in page
    n = len(mine(db, rev))
    assert f'id="progress">0 / {n} done' in page
    c.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": token})
    assert f'id="progress">1 / {n} done' in c.get("/queue").text


def test_queue_filters(db):
    rev = next(r for r in ("rev1", "rev2", "rev3") if {"cw-1", "cw-3"} <= mine(db, r))
    c = client(db)
    login(c, rev)
    rows = re.findall(r'<a href="/review/(cw-\d)">', c.get("/queue?genre=letter").text)
    assert rows == ["cw-3"]
    assert re.findall(r'<a href="/review/(cw-\d)">', c.get("/queue?category=poetry").text) == \
        ["cw-1"]
    r = c.get("/review?genre=letter")
    assert r.headers["location"] == "/review/cw-3?genre=letter"
    page = c.get(r.headers["location"]).text  # the filter rides along to the next item
    assert 'name="next_filters" value="genre=letter"' in page
    assert 'id="done"' in c.get("/review?genre=no_such_genre").text


def test_guidelines_admin_edits_reviewers_read(db):
    adm, rev = client(db), client(db)
    ta = login(adm, "admin")
    tr = login(rev, assigned(db, "cw-3")[0])
    r = adm.post("/guidelines/letter", data={"csrf": ta, "text": "书信：称呼、正文、署名齐全。<b>x</b>"})
    assert r.status_code == 303
    assert rev.post("/guidelines/letter", data={"csrf": tr, "text": "mine"}).status_code == 403
    assert adm.post("/guidelines/nope", data={"csrf": ta, "text": "x"}).status_code == 404
    page = rev.get("/review/cw-3").text
    assert 'id="guideline"' in page and "书信：称呼、正文、署名齐全。&lt;b&gt;x" in page
    assert "书信：称呼" in rev.get("/guidelines/letter").text
    assert 'id="g-text"' not in rev.get("/guidelines/letter").text  # no edit form for reviewers
    assert "/guidelines/letter" in rev.get("/guidelines").text
    with Store(db) as s:
        assert s.auth.audit_log("guideline")[0]["item_id"] == "letter"


def test_shortcut_script_is_self_hosted_and_allowed(db):
    c = client(db)
    login(c, "admin")
    page = c.get("/review/cw-3")
    assert '<script src="/static/keys.js" defer></script>' in page.text
    assert "<script>" not in page.text.replace("&lt;script&gt;", "")  # no inline script
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = c.get("/static/keys.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert c.get("/static/../app.py").status_code == 404


def test_usefulness_figures_shown_when_scored(db):
    rev = assigned(db, "cw-3")[0]
    c = client(db)
    login(c, rev)
    assert 'id="usefulness"' not in c.get("/review/cw-3").text
    with Store(db) as s:
        s.usefulness.put_usefulness("cw-3", 0, "transformers:tiny", "f" * 64, "s1", "letter",
                         {"nll_prompt": 1.7001, "nll_own": 1.2804, "gain": 0.41971,
                          "gain_vs_control": 0.3, "scorer": "transformers:tiny",
                          "template_hash": "f" * 64, "settings": {"window_chars": 2000}})
    page = c.get("/review/cw-3").text
    assert 'id="usefulness"' in page and "<dt>gain</dt><dd>0.42</dd>" in page
    assert "<dt>template_hash</dt><dd>ffffffffffff</dd>" in page
    assert "window_chars" not in page  # run settings are not a reviewer's concern