"""Hardening and integrity of the review app, through its HTTP interface (FastAPI TestClient):
login throttling, unknown-user timing path, allowed hosts, session revocation and idle timeout,
common passwords, headers on every response, body limit, Secure cookies, single-use login
tokens, audit log, kept edits, hidden votes, admin votes, integer ranks, no raw errors."""

import re
import time

import pytest
from fastapi.testclient import TestClient

from coig_writer.review import auth, service
from coig_writer.review.app import create_app
from coig_writer.store import Store

from .review_fixtures import PASSWORD, POLICY, build

BASE = "http://127.0.0.1"


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "review.sqlite"
    build(path)
    return path


def client(db, base=BASE, **kw) -> TestClient:
    return TestClient(create_app(db, POLICY, **kw), base_url=base, follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def try_login(c: TestClient, user: str, password: str = PASSWORD, **headers):
    page = c.get("/login")
    return c.post("/login", data={"username": user, "password": password,
                                  "csrf": csrf_of(page.text)}, headers=headers)


def login(c: TestClient, user: str) -> str:
    r = try_login(c, user)
    assert r.status_code == 303, r.text
    return csrf_of(c.get(c.get("/").headers["location"], follow_redirects=True).text)


def assigned(db, item):
    with Store(db) as s:
        return sorted(r for i, r in s.review.assignments() if i == item)


def test_login_throttled_per_account_then_per_address(db, monkeypatch):
    monkeypatch.setattr(auth, "MAX_FAILS_ADDRESS", 8)
    c = client(db)
    for _ in range(auth.MAX_FAILS_ACCOUNT):
        assert try_login(c, "rev1", "wrong password!").status_code == 401
    locked = try_login(c, "rev1")  # the right password is not even checked now
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "too many failed logins" in locked.text and "cw_session" not in locked.headers.get(
        "set-cookie", "")
    assert try_login(c, "rev2").status_code == 303  # other accounts are not locked
    for i in range(3):  # unknown names from the same address count against the address
        assert try_login(c, f"ghost{i}", "wrong password!").status_code == 401
    assert try_login(c, "rev3").status_code == 429  # the address is throttled now
    with Store(db) as s:
        actions = [a["action"] for a in s.auth.audit_log()]
        assert actions.count("login_failed") == 8 and "login_throttled" in actions
        s.db.execute("UPDATE login_failures SET at = at - ?", (auth.WINDOW_S + 1,))
    assert try_login(c, "rev1").status_code == 303  # the window passed


def test_unknown_user_costs_a_password_hash(db, monkeypatch):
    calls = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda p, h: calls.append(h) or real(p, h))
    with Store(db) as s:
        assert auth.login(s, "nobody", "whatever pass", "a") is None
        assert auth.login(s, "rev1", "whatever pass", "a") is None
    assert len(calls) == 2 and all(h.startswith("scrypt$") for h in calls)


def test_login_token_is_single_use(db):
    c = client(db)
    token = csrf_of(c.get("/login").text)
    first = c.post("/login", data={"username": "rev1", "password": "bad password", "csrf": token})
    assert first.status_code == 401
    c.cookies.set("cw_login_csrf", token)
    again = c.post("/login", data={"username": "rev1", "password": PASSWORD, "csrf": token})
    assert again.status_code == 403 and "cw_session" not in again.headers.get("set-cookie", "")


def test_allowed_hosts(db):
    c = client(db)
    evil = c.get("/login", headers={"Host": "evil.example"})
    assert evil.status_code == 400 and "unknown host" in evil.text
    assert evil.headers["cache-control"] == "no-store" and "frame-ancestors" in \
        evil.headers["content-security-policy"]
    assert try_login(c, "rev1", Host="evil.example:8600").status_code == 400
    assert c.get("/login", headers={"Host": "localhost:8600"}).status_code == 200
    assert c.get("/login", headers={"Host": "[::1]:8600"}).status_code == 200
    ok = client(db, allowed_hosts=("review.lab.example",))
    assert ok.get("/login", headers={"Host": "review.lab.example"}).status_code == 200


def test_sessions_end_on_reset_idle_and_are_cleaned(db):
    a, adm = client(db), client(db)
    login(a, "rev1")
    token = login(adm, "admin")
    assert a.get("/review").status_code == 303 and a.get("/review").headers["location"] != "/login"
    r = adm.post("/admin/users", data={"username": "rev1", "password": "a new long passphrase",
                                       "new_role": "reviewer", "csrf": token})
    assert "sessions%20were%20ended" in r.headers["location"]
    assert a.get("/review").headers["location"] == "/login"  # the old session is gone
    with Store(db) as s:
        auth.add_user(s, "rev2", PASSWORD, "rater")  # a role change ends sessions too
    b = client(db)
    login(b, "rev3")
    with Store(db) as s:
        s.db.execute("UPDATE sessions SET last_seen = last_seen - ?", (auth.IDLE_TIMEOUT_S + 5,))
    assert b.get("/review").headers["location"] == "/login"  # idle too long
    login(client(db), "rater1")
    with Store(db) as s:
        s.db.execute("UPDATE sessions SET expires = ?", (time.time() - 1,))
        assert s.auth.count_sessions() >= 1
    login(client(db), "rater2")  # a login purges expired and idle sessions
    with Store(db) as s:
        assert s.auth.count_sessions() == 1


@pytest.mark.parametrize("pw", ["12345678", "1234567890", "password123", "short", "aaaaaaaaaaaa",
                                "my rev9 secret!"])
def test_weak_passwords_refused(db, pw):
    with Store(db) as s, pytest.raises(ValueError):
        auth.add_user(s, "rev9", pw, "reviewer")
    c = client(db)
    token = login(c, "admin")
    r = c.post("/admin/users", data={"username": "rev9", "password": pw, "new_role": "reviewer",
                                     "csrf": token})
    assert "added" not in r.headers["location"]
    with Store(db) as s:
        assert s.auth.get_user("rev9") is None


def test_headers_on_every_response(db):
    c = client(db)
    token = login(c, "admin")
    responses = {
        "page": c.get("/admin"), "redirect": c.get("/"), "404": c.get("/review/nope"),
        "css": c.get("/static/app.css"), "js": c.get("/static/keys.js"),
        "export": c.get("/admin/export"), "400": c.post("/review/cw-1", data={"csrf": token}),
        "403": c.post("/admin/assign", data={"csrf": "forged"}),
        "unauth": client(db).get("/review"),
    }
    for name, r in responses.items():
        h = r.headers
        assert h.get("cache-control") == "no-store", name
        assert "default-src 'self'" in h.get("content-security-policy", ""), name
        assert h.get("x-content-type-options") == "nosniff", name
        assert h.get("x-frame-options") == "DENY", name
    assert responses["export"].status_code == 200 and responses["redirect"].status_code == 303


def test_total_body_limit(db):
    c = client(db, max_body=256 * 1024)
    token = login(c, "admin")
    fields = {f"f{i}": "x" * 100_000 for i in range(5)}  # each field small, 500 kB in total
    r = c.post("/admin/assign", data={"csrf": token, **fields})
    assert r.status_code == 413 and "request too large" in r.text
    assert r.headers["cache-control"] == "no-store"

    def chunks():  # no Content-Length: the limit is counted while reading
        for _ in range(5):
            yield b"a=" + b"x" * 100_000 + b"&"

    r = c.post("/admin/assign", content=chunks(),
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert c.post("/admin/assign", data={"csrf": token}).status_code == 303  # normal forms pass


def test_secure_cookies_over_https_and_trusted_proxy_only(db):
    def cookie_of(c, **headers):
        r = try_login(c, "rev1", **headers)
        return next(v for k, v in r.headers.multi_items() if k == "set-cookie"
                    and v.startswith("cw_session="))

    assert "secure" not in cookie_of(client(db)).lower()
    assert "secure" in cookie_of(client(db, base="https://127.0.0.1")).lower()
    assert "strict-transport-security" in client(db, base="https://127.0.0.1").get("/login").headers
    assert "strict-transport-security" not in client(db).get("/login").headers
    # X-Forwarded-Proto from an address that is not a trusted proxy is ignored
    assert "secure" not in cookie_of(client(db), **{"X-Forwarded-Proto": "https"}).lower()
    trusted = client(db, trusted_proxies=("testclient",))
    assert "secure" in cookie_of(trusted, **{"X-Forwarded-Proto": "https"}).lower()
    forced = client(db, secure_cookies=True).get("/login").headers["set-cookie"]
    assert forced.startswith("cw_login_csrf=") and "secure" in forced.lower()
    # behind a trusted proxy, throttling and the audit log see the forwarded client address
    try_login(trusted, "rev2", "bad password", **{"X-Forwarded-For": "203.0.113.9"})
    with Store(db) as s:
        assert s.auth.audit_log("login_failed")[0]["address"] == "203.0.113.9"


def test_audit_log_records_logins_and_decisions(db):
    rev = assigned(db, "cw-3")[0]
    c = client(db)
    token = login(c, rev)
    c.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": token})
    with Store(db) as s:
        log = s.auth.audit_log()
    assert [(a["actor"], a["action"], a["item_id"]) for a in log[:2]] == \
        [(rev, "decision", "cw-3"), (rev, "login", None)]
    assert log[1]["address"] == "testclient"


# -- integrity ---------------------------------------------------------------------------------
def test_edited_text_with_accept_is_refused_and_kept(db):
    rev = assigned(db, "cw-3")[0]
    c = client(db)
    token = login(c, rev)
    r = c.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": token,
                                     "query": "写一封信", "thought": "我改过的思考过程",
                                     "answer": "亲爱的朋友：你好。", "reason": "my note"})
    assert r.status_code == 400 and "accept with my edits" in r.text
    assert "我改过的思考过程" in r.text and "my note" in r.text  # nothing typed is lost
    with Store(db) as s:
        assert s.review.reviews("cw-3") == [] and s.review.triplet_version("cw-3") == 0
    # choosing "edit" then saves it as a version
    r = c.post("/review/cw-3", data={"decision": "edit", "version": "0", "csrf": token,
                                     "query": "写一封信", "thought": "我改过的思考过程",
                                     "answer": "亲爱的朋友：你好。"})
    assert r.status_code == 303
    with Store(db) as s:
        assert s.construct.get_triplet("cw-3").thought == "我改过的思考过程"


def test_unified_diff_without_trailing_newline():
    d = service.unified("第一行\n第二行", "第一行\n第二行改", "a", "b")
    assert "-第二行\n+第二行改\n" in d and "第二行+" not in d
    assert service.unified("x\ny", "x\ny\nz", "a", "b").endswith(" y\n+z\n")
    assert service.unified("same", "same", "a", "b") == ""


def test_others_votes_hidden_until_decided(db):
    first, second = assigned(db, "cw-3")
    a, b, adm = client(db), client(db), client(db)
    ta, tb = login(a, first), login(b, second)
    login(adm, "admin")
    a.post("/review/cw-3", data={"decision": "reject", "version": "0", "csrf": ta,
                                 "reason": "SECRET-REASON-42"})
    page = b.get("/review/cw-3").text
    assert "SECRET-REASON-42" not in page and first not in page.split('id="reviews"')[1]
    assert "shown after you decide" in page
    assert "SECRET-REASON-42" in adm.get("/review/cw-3").text
    b.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": tb})
    assert "SECRET-REASON-42" in b.get("/review/cw-3").text


def test_admin_decisions_count_only_when_assigned(db):
    rev = assigned(db, "cw-3")[0]
    with Store(db) as s:
        service.decide(s, "cw-3", "admin", "accept", "", 0, POLICY)
        service.decide(s, "cw-3", rev, "accept", "", 0, POLICY)
        assert service.item_status(s, s.construct.get_triplet("cw-3"), POLICY) == "pending"  # k=2
        s.review.assign("cw-3", "admin")
        assert service.item_status(s, s.construct.get_triplet("cw-3"), POLICY) == "accepted"


def test_ranks_are_whole_numbers_and_errors_are_plain(db):
    c = client(db)
    token = login(c, "rater1")
    first = c.get("/rank").headers["location"]
    r = c.post(first, data={"csrf": token, "slot0": "1.5", "slot1": "2", "slot2": "3"})
    assert "whole%20numbers" in r.headers["location"]
    r = c.post(first, data={"csrf": token, "slot0": "abc", "slot1": "2", "slot2": "3"})
    assert "convert" not in r.headers["location"]
    with Store(db) as s:
        assert s.evaluation.judgments(source="human") == []
        with pytest.raises(ValueError, match="whole numbers"):
            service.save_ranking(s, "rater1", first.rsplit("/", 1)[1], {0: 1.5, 1: 2, 2: 3})
    rev = client(db)
    t = login(rev, assigned(db, "cw-3")[0])
    bad = rev.post("/review/cw-3", data={"decision": "accept", "version": "abc", "csrf": t})
    assert bad.status_code == 400 and "invalid form fields: version" in bad.text
    assert "Input should be" not in bad.text and "int_parsing" not in bad.text
