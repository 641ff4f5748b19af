"""The review app through its HTTP interface (FastAPI TestClient), plus the service rules."""

import re

import pytest
from fastapi.testclient import TestClient

from coig_writer.review import service
from coig_writer.review.app import create_app
from coig_writer.store import Store

from .review_fixtures import EVIL, PASSWORD, POLICY, build


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "review.sqlite"
    build(path)
    return path


def client(db) -> TestClient:
    return TestClient(create_app(db, POLICY), base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(c: TestClient, user: str, password: str = PASSWORD) -> str:
    page = c.get("/login")
    r = c.post("/login", data={"username": user, "password": password, "csrf": csrf_of(page.text)})
    assert r.status_code == 303, r.text
    home = c.get(c.get("/").headers["location"], follow_redirects=True)
    return csrf_of(home.text)


def test_login_rules(db):
    c = client(db)
    assert c.get("/review").headers["location"] == "/login"
    page = c.get("/login")
    bad = c.post("/login", data={"username": "rev1", "password": "nope", "csrf": csrf_of(page.text)})
    assert bad.status_code == 401 and "wrong username or password" in bad.text
    no_csrf = c.post("/login", data={"username": "rev1", "password": PASSWORD, "csrf": "x"})
    assert no_csrf.status_code == 403
    token = login(c, "rev1")
    r = c.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": "forged"})
    assert r.status_code == 403 and "CSRF" in r.text
    assert c.post("/logout", data={"csrf": token}).status_code == 303
    assert c.get("/review").headers["location"] == "/login"


def test_roles(db):
    c = client(db)
    login(c, "rater1")
    for url in ("/admin", "/review", "/admin/export", "/review/cw-1"):
        assert c.get(url).status_code == 403, url
    with Store(db) as s:
        pairs = set(s.review.assignments())
    rev, other = next((r, t) for r in ("rev1", "rev2", "rev3") for t in ("cw-1", "cw-2", "cw-3")
                      if (t, r) not in pairs)
    c2 = client(db)
    token = login(c2, rev)
    assert c2.get("/admin").status_code == 403 and c2.get("/rank").status_code == 403
    assert c2.get(f"/review/{other}").status_code == 403
    r = c2.post(f"/review/{other}", data={"decision": "accept", "version": "0", "csrf": token})
    assert r.status_code == 403
    with Store(db) as s:
        assert s.review.reviews(other) == []


def test_review_edit_and_status(db):
    a, b, c3 = client(db), client(db), client(db)
    ta, tb, tc = login(a, "rev1"), login(b, "rev2"), login(c3, "rev3")
    # everyone reviews cw-3? it needs 2 reviewers; assignment gave it to two of them
    with Store(db) as s:
        who = sorted(r for i, r in s.review.assignments() if i == "cw-3")
        assert len(who) == 2 and len([r for i, r in s.review.assignments() if i == "cw-1"]) == 3
    admin = client(db)
    login(admin, "admin")
    html = admin.get("/review/cw-2").text
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "script-src 'self'" in admin.get("/review/cw-2").headers["content-security-policy"]
    first, second = who
    cl = {"rev1": (a, ta), "rev2": (b, tb), "rev3": (c3, tc)}
    c1, t1 = cl[first]
    r = c1.post("/review/cw-3", data={"decision": "edit", "version": "0", "csrf": t1,
                                      "query": "写一封给老朋友的信", "thought": "用户想要一封信",
                                      "answer": "亲爱的朋友：你好。"})
    assert r.status_code == 303 and r.headers["location"] == "/review"
    c2, t2 = cl[second]
    stale = c2.post("/review/cw-3", data={"decision": "edit", "version": "0", "csrf": t2,
                                          "query": "另一个版本", "thought": "x", "answer": "y"})
    # not overwritten; the losing editor gets the typed text back in the form
    assert stale.status_code == 409 and "conflict" in stale.text and "另一个版本" in stale.text
    ok = c2.post("/review/cw-3", data={"decision": "accept", "version": "1", "csrf": t2})
    assert ok.status_code == 303
    with Store(db) as s:
        t = s.construct.get_triplet("cw-3")
        assert t.query == "写一封给老朋友的信" and t.status == "accepted"
        v = s.review.versions("cw-3")
        assert len(v) == 1 and v[0]["editor"] == first and "+写一封给老朋友的信" in v[0]["diff"]
        assert [r["decision"] for r in s.review.reviews("cw-3")] == ["edit", "accept"]
    export = client(db)
    login(export, "admin")
    data = export.get("/admin/export").json()
    item = next(i for i in data["items"] if i["id"] == "cw-3")
    assert item["status"] == "accepted" and len(item["versions"]) == 1


def test_disagreement_and_agreement_stats(db):
    with Store(db) as s:
        for item in ("cw-1",):
            for r in ("rev1", "rev2"):
                service.decide(s, item, r, "accept", "", 0, POLICY)
            assert service.item_status(s, s.construct.get_triplet(item), POLICY) == "pending"  # needs 3
            st = service.decide(s, item, "rev3", "reject", "not a real poem", 0, POLICY)
            assert st == "disputed"
        with pytest.raises(ValueError, match="needs a reason"):
            service.decide(s, "cw-2", "rev1", "reject", " ", 0, POLICY)
        with pytest.raises(ValueError, match="must change"):
            service.decide(s, "cw-2", "rev1", "edit", "", 0, POLICY, {"query": "写一个故事"})
        stats = service.agreement_stats(s)
        assert stats["reviewers"]["items"] == 1
        # one unit with labels accept, accept, reject: alpha = 1 - (n-1)*D_o/D_e = -0.5 ... <= 0
        assert stats["reviewers"]["alpha"] is not None and stats["reviewers"]["alpha"] <= 0


def test_blind_ranking(db):
    c = client(db)
    token = login(c, "rater1")
    first = c.get("/rank").headers["location"]
    pid = first.rsplit("/", 1)[1]
    page = c.get(first).text
    assert "model-a" not in page and "model-b" not in page and "&lt;script&gt;" in page
    outputs = re.findall(r'id="output-(\d)">([^<]*)', page)
    assert len(outputs) == 3
    bad = c.post(first, data={"csrf": token, "slot0": "1", "slot1": "2", "slot2": ""})
    assert "rank every output" in bad.headers["location"].replace("%20", " ")
    r = c.post(first, data={"csrf": token, "slot0": "1", "slot1": "2", "slot2": "2"})
    assert r.status_code == 303
    with Store(db) as s:
        j = s.evaluation.judgments(source="human", judge="rater1")[0]
        order = service.blind_order("rater1", pid, ["model-a", "model-b", "model-c"])
        assert j.ranks == {order[0]: 1.0, order[1]: 2.0, order[2]: 2.0}
    assert service.blind_order("rater1", pid, ["a", "b", "c", "d"]) == \
        service.blind_order("rater1", pid, ["d", "c", "b", "a"])  # stable on revisit
    nxt = c.get("/rank").headers["location"]
    assert nxt != first  # resumes with the next unranked prompt
