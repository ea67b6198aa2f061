"""The web UI, server side: every page through FastAPI's TestClient on a database that
`asl batch` filled, and the security points of the spec (session cookie, CSRF and
same-origin checks, CSP, roles as the API checks them, escaping of ids and rule text)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import activate_overlay
from service_server import make_token, run_asl
from sqlalchemy import event

from service.app import create_app
from service.config import ServiceConfig
from service.ui.session import COOKIE, Sessions
from store import audit, packs, tokens
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
ORIGIN = "http://testserver"
EVIL = "<script>alert(1)</script>"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
READ_PAGES = ["/ui/models", "/ui/models?asl=ASL-3&decision=pause&q=kite&sort=-assessed",
              "/ui/models/larkspur-kite-4", "/ui/models/larkspur-kite-4?conclusion=asl",
              "/ui/models/larkspur-kite-4/evidence/evidence%3Akite4-bio-vmcq-2026-09",
              "/ui/rules", "/ui/rules/requirements.highest"]


def _evil_pack(tmp: Path) -> Path:
    """The acme-lab overlay with `<script>` in a rule title."""
    files = packs.read_pack_files(EXAMPLES / "packs" / "acme-lab")
    files["rules/10-acme.yaml"] = files["rules/10-acme.yaml"].replace(
        "title: Cyber operations of concern", f"title: \"{EVIL} Cyber operations of concern",
        1).replace("at Acme\n", "at Acme\"\n", 1)
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text, encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{tmp}/asl.db"
    evil = (EXAMPLES / "security-gap-pause.yaml").read_text(encoding="utf-8")
    evil = evil.replace("id: kite4-bio-acquisition-2026-09", f'id: "{EVIL}"').replace(
        "id: larkspur-kite-4", "id: evil-kite")
    (tmp / "evil.yaml").write_text(evil, encoding="utf-8")
    stored = run_asl("batch", str(EXAMPLES), str(EXAMPLES / "portfolio" / "lineage.yaml"),
                     str(tmp / "evil.yaml"), "--db", url)
    assert stored.returncode == 0, stored.stderr
    # A second assessment of larkspur-kite-4, with the audit done: the history has two.
    later = (EXAMPLES / "security-gap-pause.yaml").read_text(encoding="utf-8")
    (tmp / "later.yaml").write_text(later.replace("score: 0.66", "score: 0.71"),
                                    encoding="utf-8")
    again = run_asl("batch", str(tmp / "later.yaml"), "--db", url)
    assert again.returncode == 0, again.stderr
    return activate_overlay(url, _evil_pack(tmp / "acme-lab"))


@pytest.fixture(scope="module")
def app(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(db_url)), base_url=ORIGIN) as client:
        yield client


def client_of(app: TestClient) -> TestClient:
    """A fresh browser (its own cookie jar) on the same running app."""
    client = TestClient(app.app, base_url=ORIGIN)
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def login(client: TestClient, token: str) -> httpx.Response:
    form = client.get("/ui/login")
    return client.post("/ui/login", data={"token": token, "csrf": csrf_of(form.text)},
                       headers={"Origin": ORIGIN}, follow_redirects=False)


@pytest.fixture
def browser(app: TestClient) -> TestClient:
    return client_of(app)


def logged_in(app: TestClient, db_url: str, role: str, person: str | None = None
              ) -> TestClient:
    client = client_of(app)
    response = login(client, make_token(db_url, role, person or f"{role}-person"))
    assert response.status_code == 303, response.text
    return client


# --- login, session cookie, logout ---------------------------------------------------------


def test_login_page_is_a_form_with_a_token_field(browser: TestClient) -> None:
    response = browser.get("/ui/login")
    assert response.status_code == 200
    assert '<form method="post" action="/ui/login">' in response.text
    assert '<input id="token" name="token"' in response.text
    assert 'type="submit"' in response.text
    assert response.headers["content-security-policy"] == CSP


def test_login_sets_a_strict_httponly_cookie_holding_a_session_id_never_the_token(
        browser: TestClient, db_url: str) -> None:
    token = make_token(db_url, "viewer", "vera")
    response = login(browser, token)
    assert response.status_code == 303 and response.headers["location"] == "/ui/models"
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith(f"{COOKIE}="))
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40 and token not in cookie and value not in token
    page = browser.get("/ui/models")
    assert page.status_code == 200 and "vera" in page.text and token not in page.text


def test_a_wrong_token_gets_the_form_again_and_no_session(browser: TestClient,
                                                          db_url: str) -> None:
    response = login(browser, make_token(db_url, "viewer", "vic")[:-3] + "xyz")
    assert response.status_code == 401
    assert "unknown, expired or revoked" in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_the_login_form_reads_the_token_off_the_event_loop(app: TestClient,
                                                          db_url: str) -> None:
    """Logging in reads the token and records its first use (a write, which may wait for
    the write lock): done in the event loop's thread, that wait would hold up every
    request the worker has. No database connection is taken in that thread."""
    engine = app.app.app.state.asl.engine  # type: ignore[attr-defined]
    seen: list[str] = []  # the threads connections were taken in
    in_loop: list[str] = []

    def taken(*_: Any) -> None:
        seen.append(threading.current_thread().name)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread: no loop runs in it
            return
        in_loop.append(threading.current_thread().name)

    token = make_token(db_url, "viewer", "lena")
    event.listen(engine, "checkout", taken)
    try:
        wrong = login(client_of(app), token[:-3] + "xyz")
        right = login(client_of(app), token)
    finally:
        event.remove(engine, "checkout", taken)
    assert (wrong.status_code, right.status_code) == (401, 303)
    assert len(seen) >= 3  # two reads of the token and the record of its use
    assert in_loop == []
    lena = next(t for t in tokens.list_tokens(engine) if t.person == "lena")
    assert lena.last_used_at is not None


@pytest.mark.parametrize("path", [*READ_PAGES, "/ui/models/larkspur-kite-4/what-if"])
def test_every_page_sends_a_browser_without_a_session_to_the_login_form(
        browser: TestClient, path: str) -> None:
    response = browser.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    browser.cookies.set(COOKIE, "forged-session-id")
    assert browser.get(path, follow_redirects=False).status_code == 303


def test_the_login_form_checks_csrf_and_origin(browser: TestClient, db_url: str) -> None:
    token = make_token(db_url, "viewer", "vic")
    csrf = csrf_of(browser.get("/ui/login").text)
    cases = [({"Origin": ORIGIN}, {"token": token}),  # no CSRF value
             ({"Origin": ORIGIN}, {"token": token, "csrf": "forged"}),
             ({"Origin": "https://evil.example"}, {"token": token, "csrf": csrf}),
             ({"Origin": "null"}, {"token": token, "csrf": csrf}),
             ({}, {"token": token, "csrf": csrf}),
             ({"Sec-Fetch-Site": "cross-site"}, {"token": token, "csrf": csrf})]
    for headers, data in cases:
        response = browser.post("/ui/login", data=data, headers=headers,
                                follow_redirects=False)
        assert response.status_code == 403, (headers, data)
        assert COOKIE not in response.headers.get("set-cookie", "")
    # A browser that sends no Origin but says same-origin is let in.
    response = browser.post("/ui/login", data={"token": token, "csrf": csrf},
                            headers={"Sec-Fetch-Site": "same-origin"},
                            follow_redirects=False)
    assert response.status_code == 303


def test_logout_needs_the_csrf_value_and_ends_the_session(app: TestClient,
                                                          db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    page = client.get("/ui/models")
    assert client.post("/ui/logout", data={"csrf": "forged"},
                       headers={"Origin": ORIGIN}).status_code == 403
    assert client.get("/ui/models", follow_redirects=False).status_code == 200
    stolen = client.cookies.get(COOKIE)
    response = client.post("/ui/logout", data={"csrf": csrf_of(page.text)},
                           headers={"Origin": ORIGIN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    replay = client_of(app)
    replay.cookies.set(COOKIE, stolen or "")
    assert replay.get("/ui/models", follow_redirects=False).status_code == 303


def test_a_revoked_token_ends_its_sessions_at_once(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "viewer", "rex")
    assert client.get("/ui/models", follow_redirects=False).status_code == 200
    engine = connect(db_url)
    try:
        [mine] = [t for t in tokens.list_tokens(engine) if t.person == "rex"]
        tokens.revoke(engine, mine.name)
    finally:
        engine.dispose()
    assert client.get("/ui/models", follow_redirects=False).status_code == 303


def test_the_cookie_is_not_a_credential_for_the_api_nor_a_token_for_the_ui(
        app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "admin")
    response = client.get("/v1/models")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    bearer = client_of(app)
    headers = {"Authorization": f"Bearer {make_token(db_url, 'admin', 'ada')}"}
    assert bearer.get("/ui/models", headers=headers, follow_redirects=False
                      ).status_code == 303


# --- headers, CSP, roles, escaping ----------------------------------------------------------


@pytest.mark.parametrize("path", READ_PAGES)
def test_pages_carry_the_security_headers_and_no_inline_script_or_style(
        app: TestClient, db_url: str, path: str) -> None:
    client = logged_in(app, db_url, "viewer")
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "<script" not in response.text.lower()
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", response.text, re.IGNORECASE)


def test_the_stylesheet_is_served_from_the_package(browser: TestClient) -> None:
    response = browser.get("/ui/static/ui.css")
    assert response.status_code == 200 and "text/css" in response.headers["content-type"]


def test_roles_are_checked_as_the_api_checks_them(app: TestClient, db_url: str) -> None:
    page = "/ui/models/larkspur-kite-4/what-if"
    for role, status in (("viewer", 403), ("rule-author", 403), ("analyst", 200),
                         ("admin", 200)):
        client = logged_in(app, db_url, role)
        response = client.get(page)
        assert response.status_code == status, (role, response.text)
        form = client.get("/ui/models/larkspur-kite-4")
        assert ("What if" in form.text) == (status == 200)
        if status == 403:
            assert "needs analyst" in response.text
            posted = client.post(page, data={"csrf": csrf_of(form.text)},
                                 headers={"Origin": ORIGIN})
            assert posted.status_code == 403


def test_ids_and_rule_text_are_escaped(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    model = client.get("/ui/models/evil-kite")
    rules = client.get("/ui/rules")
    rule = client.get("/ui/rules/acme.cyber.requires-asl3-security")
    for response in (model, rules, rule):
        assert response.status_code == 200, response.text
        assert EVIL not in response.text and "<script" not in response.text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in model.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Cyber operations" in rules.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Cyber operations" in rule.text
    # The graph node of that evidence links to its page, the id percent-encoded.
    href = "/ui/models/evil-kite/evidence/evidence%3A%3Cscript%3Ealert%281%29%3C%2Fscript%3E"
    assert href in model.text
    item = client.get(href)
    assert item.status_code == 200 and "&lt;script&gt;" in item.text
    assert EVIL not in item.text


# --- the pages -------------------------------------------------------------------------------


def _model_ids(html: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/models/[^"]+">([^<]+)</a></td>', html)


def test_models_are_filtered_searched_sorted_and_paged(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    everything = client.get("/ui/models").text
    ids = _model_ids(everything)
    assert len(ids) == 16 and ids == sorted(ids) and "larkspur-kite-4" in ids
    assert _model_ids(client.get("/ui/models?asl=ASL-4").text) == ["oriel-meridian-3"]
    assert set(_model_ids(client.get("/ui/models?decision=pause").text)) == {
        "evil-kite", "larkspur-kite-4", "oriel-meridian-3"}
    assert _model_ids(client.get("/ui/models?q=KITE").text) == ["evil-kite",
                                                                  "larkspur-kite-4"]
    assert _model_ids(client.get("/ui/models?sort=-model").text) == sorted(ids, reverse=True)
    by_asl = _model_ids(client.get("/ui/models?sort=-asl").text)
    assert by_asl[0] == "oriel-meridian-3"
    first = client.get("/ui/models?per=10")
    second = client.get("/ui/models?per=10&page=2")
    assert _model_ids(first.text) + _model_ids(second.text) == ids
    assert "page 1 of 2" in first.text and "page 2 of 2" in second.text
    assert 'rel="next" href="/ui/models?' in first.text and "per=10" in first.text
    empty = client.get("/ui/models?q=no-such-model")
    assert "No stored model matches" in empty.text and "0 with the filters" in empty.text
    assert client.get("/ui/models?asl=ASL-9&sort=nonsense").status_code == 200


def test_the_model_page_lays_out_the_assessment(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    html = client.get("/ui/models/larkspur-kite-4").text
    for text in ("ASL-3", "d-pause", "Standards required", "Deployment", "Security",
                 "asl3-security.resourcing", "notify board and ltbt",
                 '<span class="status s-cannot_rule_out">cannot rule out</span>',
                 '<span class="status s-not_assessed">not assessed</span>',
                 '<span class="status s-ruled_out">ruled out</span>',
                 'dl class="legend"', "Why decision value=pause?"):
        assert text in html, text
    # The why-graph: an inline SVG whose nodes link to rules, evidence and conclusions.
    assert "<svg" in html
    assert 'xlink:href="/ui/rules/decision.most-severe"' in html
    assert 'xlink:href="/ui/models/larkspur-kite-4/evidence/evidence%3A' in html
    # The same chain as text, with the same links.
    assert 'class="tree"' in html and '<a href="/ui/rules/decision.most-severe">' in html
    # Another conclusion explained.
    cbrn = client.get("/ui/models/larkspur-kite-4?conclusion=threshold%3ACBRN-3").text
    assert "Why status capability=CBRN-3, value=cannot_rule_out?" in cbrn
    missing = client.get("/ui/models/larkspur-kite-4?conclusion=nonsense:x")
    assert missing.status_code == 404 and "no conclusion" in missing.text


def test_the_history_lists_every_assessment_and_diffs_two(app: TestClient,
                                                          db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    html = client.get("/ui/models/larkspur-kite-4").text
    ids = re.findall(r'name="old" value="(\d+)"', html)
    assert len(ids) == 2
    newer, older = ids
    diff = client.get(f"/ui/models/larkspur-kite-4/diff?old={older}&new={newer}")
    assert diff.status_code == 200
    assert "evidence:kite4-bio-acquisition-2026-09" in diff.text
    assert "0.66" in diff.text and "0.71" in diff.text
    pinned = client.get(f"/ui/models/larkspur-kite-4?assessment={older}")
    assert "not the newest" in pinned.text
    assert client.get("/ui/models/larkspur-kite-4?assessment=999999").status_code == 404


def test_unknown_models_and_evidence_get_a_404_page(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    for path in ("/ui/models/no-such-model", "/ui/models/larkspur-kite-4/evidence/nope",
                 "/ui/rules/no.such.rule"):
        response = client.get(path)
        assert response.status_code == 404 and "Not found" in response.text, path
        assert response.headers["content-type"].startswith("text/html")


def test_without_graphviz_the_page_shows_the_text_view(app: TestClient, db_url: str,
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    client = logged_in(app, db_url, "viewer")
    monkeypatch.setenv("PATH", "/nonexistent")
    html = client.get("/ui/models/larkspur-kite-4").text
    assert "<svg" not in html and "The drawing needs Graphviz" in html
    assert '<details class="chain" open>' in html
    assert '<a href="/ui/rules/decision.most-severe">' in html


def test_rules_pages_show_citations_conditions_links_and_tests(app: TestClient,
                                                                db_url: str) -> None:
    client = logged_in(app, db_url, "viewer")
    rules = client.get("/ui/rules").text
    assert "requirements.highest" in rules and "RSP v2.1" in rules
    assert "pack acme-lab" in rules  # an overlay's rule names its pack
    assert "match " in rules  # conditions in words
    searched = client.get("/ui/rules?q=acme").text
    assert "acme.cyber.requires-asl3-security" in searched
    assert "requirements.highest" not in searched
    rule = client.get("/ui/rules/signals.eval.rule-in-reached").text
    assert "Fed by" in rule and "Feeds" in rule and "<pre" in rule
    assert "a rule-in evaluation at its threshold score shows CBRN-3 crossed" in rule


def test_what_if_shows_what_changes_and_stores_nothing(app: TestClient, db_url: str) -> None:
    client = logged_in(app, db_url, "analyst", "ana")
    form = client.get("/ui/models/larkspur-kite-4/what-if")
    assert form.status_code == 200
    assert 'name="safeguards[asl3-security.audits].status"' in form.text
    before = client.get("/ui/models/larkspur-kite-4").text.count('name="old"')
    fields = {"csrf": csrf_of(form.text),
              "safeguards[asl3-security.audits].status": "implemented",
              "safeguards[asl3-security.resourcing].status": "implemented"}
    response = client.post("/ui/models/larkspur-kite-4/what-if", data=fields,
                           headers={"Origin": ORIGIN})
    assert response.status_code == 200, response.text
    assert 'id="changes"' in response.text and "<code>decision</code>" in response.text
    assert "pause" in response.text and "<svg" in response.text
    assert "safeguards[asl3-security.audits].status=implemented" in response.text
    after = client.get("/ui/models/larkspur-kite-4").text.count('name="old"')
    assert after == before  # nothing stored
    engine = connect(db_url)
    try:
        last = list(audit.entries(engine))[-1]
    finally:
        engine.dispose()
    assert last.action == "what-if" and last.actor == "ana"
    bad = client.post("/ui/models/larkspur-kite-4/what-if",
                      data={**fields, "safeguards[asl3-security.audits].status": "nonsense"},
                      headers={"Origin": ORIGIN})
    assert bad.status_code == 422 and "is not one of" in bad.text
    forged = client.post("/ui/models/larkspur-kite-4/what-if",
                         data={**fields, "csrf": "forged"}, headers={"Origin": ORIGIN})
    assert forged.status_code == 403


def test_sessions_end_after_the_idle_and_the_absolute_timeout(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path}/asl.db")
    try:
        _, token = tokens.create(engine, "t1", "viewer", "pat")
        idle = Sessions(engine, idle_s=0.2, absolute_s=60)
        kept = idle.create(token)
        for _ in range(4):  # used within the idle time: kept
            time.sleep(0.1)
            found = idle.get(kept.id)
            assert found is not None and (found.token_id, found.person, found.csrf) == (
                token.id, "pat", kept.csrf)
        time.sleep(0.3)
        assert idle.get(kept.id) is None
        absolute = Sessions(engine, idle_s=60, absolute_s=0.2)
        used = absolute.create(token)
        time.sleep(0.1)
        assert absolute.get(used.id) is not None
        time.sleep(0.15)
        assert absolute.get(used.id) is None
        assert kept.id != used.id and len(kept.id) >= 40 and kept.csrf != used.csrf
        with engine.connect() as conn:  # only hashes of ids are kept; dead ones are gone
            stored = conn.exec_driver_sql("SELECT id_sha256 FROM ui_session").scalars().all()
        assert stored == []
        live = absolute.create(token)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT id_sha256 FROM ui_session").scalars().all()
        assert live.id not in stored and len(stored) == 1
        tokens.revoke(engine, "t1")  # revoking the token ends its sessions
        assert absolute.get(live.id) is None
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM ui_session").scalar_one() == 0
    finally:
        engine.dispose()
