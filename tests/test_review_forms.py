"""Review forms (issue 21, failure 10): fields up to the README's 4 MiB body limit are taken,
every refused form comes back as the page with the typed text and the reason, and no decision
is preselected (Ctrl+Enter on an unread item must not accept it)."""

import html
import re

from coig_writer.store import Store

from .test_review_hardening import assigned, client, db, login  # noqa: F401 (db is a fixture)

CHAPTER = "山" * 400_000  # a long novel chapter: 1.2 MB as UTF-8, 3.6 MB URL-encoded


def checked_decisions(page: str) -> list[str]:
    return re.findall(r'name="decision" value="(\w+)"[^>]*\bchecked\b', page)


def test_a_3_6_mb_field_is_saved(db):  # noqa: F811
    c = client(db)
    token = login(c, assigned(db, "cw-3")[0])
    r = c.post("/review/cw-3", data={"decision": "edit", "version": "0", "csrf": token,
                                     "answer": CHAPTER})
    assert r.status_code == 303, r.text[:500]
    with Store(db) as s:
        assert s.construct.get_triplet("cw-3").answer == CHAPTER


def test_refused_forms_return_the_page_with_the_typed_text_and_the_reason(db):  # noqa: F811
    c = client(db)
    token = login(c, assigned(db, "cw-3")[0])
    typed = "我改写的开头" + "水" * 2000
    page = c.get("/review/cw-3").text
    assert checked_decisions(page) == []  # nothing preselected
    assert 'data-max-body="4194304"' in page  # the page stops a too-large form itself
    cases = [({"version": "0", "csrf": token}, 400, "choose a decision"),
             ({"decision": "edit", "version": "x", "csrf": token}, 400,
              "invalid form fields: version"),
             ({"decision": "edit", "version": "0", "csrf": "forged"}, 403, "CSRF"),
             ({"decision": "reject", "version": "0", "csrf": token}, 400,
              "a rejection needs a reason")]
    for form, code, reason in cases:
        r = c.post("/review/cw-3", data={**form, "answer": typed, "reason": ""})
        assert r.status_code == code, (form, r.text[:300])
        text = html.unescape(r.text)
        assert reason in text and typed in text and "Your text is kept below" in text
    with Store(db) as s:
        assert s.construct.get_triplet("cw-3").answer == "亲爱的朋友：你好。"  # nothing saved


def test_a_3_6_mb_guideline_and_a_refused_one_keeps_its_text(db):  # noqa: F811
    c = client(db)
    token = login(c, "admin")
    long = "规" * 400_000  # 3.6 MB URL-encoded
    assert c.post("/guidelines/letter", data={"csrf": token, "text": long}).status_code == 303
    with Store(db) as s:
        assert s.review.guideline("letter")["text"] == long
    r = c.post("/guidelines/letter", data={"csrf": "forged", "text": "新的准则"})
    assert r.status_code == 400 and "新的准则" in r.text and "CSRF" in r.text


def test_over_the_body_limit_is_refused_before_parsing(db):  # noqa: F811
    c = client(db)
    token = login(c, assigned(db, "cw-3")[0])
    r = c.post("/review/cw-3", data={"decision": "edit", "version": "0", "csrf": token,
                                     "answer": "山" * 1_600_000})  # 14 MB URL-encoded
    assert r.status_code == 413 and "request too large" in r.text
