"""The review app in a real browser: Playwright driving Debian's Chromium against the app
served by `coig-writer review serve` in a subprocess."""

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from coig_writer.llm.server import free_port
from coig_writer.review.service import ReviewPolicy, export_decisions
from coig_writer.store import Store

from .review_fixtures import PASSWORD, STUB_PROMPT, StageStub, build

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian chromium is not installed (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


class Server:
    def __init__(self, db, *extra: str):
        self.db, self.port, self.proc, self.extra = db, free_port(), None, list(extra)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coig_writer.cli", "review", "serve", "--db", str(self.db),
             "--port", str(self.port), "--k", "2", "--specialist", "poetry=3", *self.extra],
            env={**os.environ, "OPENAI_API_KEY": "x"})
        for _ in range(100):
            try:
                httpx.get(self.url + "/login", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("review server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "review.sqlite"
    build(db)
    srv = Server(db).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def login(browser, server, user):
    ctx = browser.new_context()
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.url + "/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state()
    return page, dialogs


def reviewer_of(db, item):
    with Store(db) as s:
        return sorted(r for i, r in s.review.assignments() if i == item)[0]


def reviewer_pair(db, item):
    with Store(db) as s:
        return sorted(r for i, r in s.review.assignments() if i == item)


def test_review_edit_escape_and_persistence(server, browser):
    rev = reviewer_of(server.db, "cw-2")
    page, dialogs = login(browser, server, rev)
    assert page.inner_text("#who").startswith(rev)
    page.goto(server.url + "/review/cw-2")
    answer = page.inner_text("#answer")
    assert "<script>window.__pwned = 1; alert('xss')</script>" in answer  # shown as text
    assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
    assert page.locator("#answer script, #answer img").count() == 0
    # the stylesheet loads under the CSP (inline styles would be blocked)
    assert page.evaluate("getComputedStyle(document.querySelector('#answer')).whiteSpace") == "pre-wrap"
    page.check("#d-edit")
    page.click("#edit-box summary")
    page.fill("#e-query", "写一个关于山的童话故事，不超过五百字")
    page.fill("#reason", "sharper prompt")
    page.click("#submit")
    page.wait_for_load_state()
    with Store(server.db) as s:  # persisted before the next item was shown
        t = s.construct.get_triplet("cw-2")
        assert t.query == "写一个关于山的童话故事，不超过五百字"
        assert [(r["reviewer"], r["decision"], r["version"]) for r in s.review.reviews("cw-2")] == \
            [(rev, "edit", 1)]
    server.stop()
    server.start()
    page, _ = login(browser, server, "admin")
    page.goto(server.url + "/review/cw-2")
    assert page.inner_text("#query") == "写一个关于山的童话故事，不超过五百字"
    assert page.inner_text("#version") == "1"
    assert rev in page.inner_text("#reviews") and "sharper prompt" in page.inner_text("#reviews")


def test_blind_ranking_resume_and_rater_blocked_from_admin(server, browser):
    page, dialogs = login(browser, server, "rater1")
    assert "/rank/" in page.url
    first = page.url
    text = page.content()
    assert "model-a" not in text and "model-b" not in text
    assert page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
    page.select_option("#slot0", "3")
    page.select_option("#slot1", "1")
    page.select_option("#slot2", "2")
    page.click("#submit")
    page.wait_for_load_state()
    assert "/rank/" in page.url and page.url != first
    server.stop()
    server.start()
    page, _ = login(browser, server, "rater1")
    assert page.url != first  # resumes after the ranked prompt
    with Store(server.db) as s:
        j = s.evaluation.judgments(source="human", judge="rater1")
        assert len(j) == 1 and sorted(j[0].ranks.values()) == [1.0, 2.0, 3.0]
    resp = page.goto(server.url + "/admin")
    assert resp.status == 403 and "for admin accounts" in page.inner_text("#error")


def test_send_back_refine_and_rereview(tmp_path, browser):
    """A reviewer sends an item back with feedback (keyboard shortcut), the worker inside
    `review serve --refine` refines it through a stub stage server, the reviewers see the diff,
    scores and feedback and accept; the export carries the final version and every round."""
    db = tmp_path / "review.sqlite"
    build(db)
    with StageStub() as stub:
        server = Server(db, "--refine", "--refine-interval", "0.3", "--backend", "openai",
                        "--model", "stub", "--base-url", stub.base_url).start()
        try:
            first, second = reviewer_pair(db, "cw-3")
            page, dialogs = login(browser, server, first)
            page.goto(server.url + "/review/cw-3")
            assert page.inner_text("#progress").endswith("done")
            page.keyboard.press("s")  # the self-hosted shortcut script runs under the CSP
            assert page.is_checked("#d-send_back")
            page.fill("#reason", "FB-browser 指令应写明收信人、情境和篇幅")
            page.uncheck("#f-reasoning")
            page.check("#f-reasoning")
            page.click("#submit")
            page.wait_for_load_state()
            for _ in range(200):  # the background worker picks it up
                with Store(db) as s:
                    refs = s.review.refinements("cw-3")
                if refs and refs[0]["status"] == "done":
                    break
                time.sleep(0.1)
            assert refs[0]["status"] == "done" and refs[0]["to_version"] == 1
            page.goto(server.url + "/review")
            assert page.url.endswith("/review/cw-3")  # back in the queue, first
            assert "FB-browser" in page.inner_text("#feedback")
            assert "+" + STUB_PROMPT in page.inner_text("#diff-query")
            assert "-写一封信" in page.inner_text("#diff-query")
            assert page.inner_text("#query") == STUB_PROMPT
            page.check("#d-accept")  # nothing is preselected
            page.click("#submit")
            page.wait_for_load_state()
            page2, _ = login(browser, server, second)
            page2.goto(server.url + "/review/cw-3")
            assert page2.locator("#rereview").count() == 1
            page2.check("#d-accept")
            page2.click("#submit")
            page2.wait_for_load_state()
            assert dialogs == []
        finally:
            server.stop()
    with Store(db) as s:
        data = export_decisions(s, ReviewPolicy(k=2, per_genre={"poetry": 3}))
    item = next(i for i in data["items"] if i["id"] == "cw-3")
    assert item["status"] == "accepted" and item["query"] == STUB_PROMPT
    assert [(r["decision"], r["round"]) for r in item["reviews"]] == \
        [("send_back", 0), ("accept", 1), ("accept", 1)]
    assert item["versions"][0]["editor"] == "model:openai:stub"
    assert item["refinements"][0]["feedback"].startswith("FB-browser")
