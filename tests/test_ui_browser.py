"""The web UI in a real browser: Playwright driving Debian's Chromium (`apt-get install
chromium`; Playwright's own browser download is not used) against `asl serve` on a
loopback port. An analyst logs in, filters the models, opens one, clicks a node of the
why-graph through to the evidence and runs a what-if; a rule author uploads a draft pack,
follows its portfolio impact to the end, and a second person, an admin, activates it.
Every page is checked for Content Security Policy violations, and screenshots are taken
at 1280 and 390 pixels wide (written to docs/ when ASL_UI_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from service_server import Server, run_asl, start_server

from store import packs

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DOCS = REPO / "docs"
WIDTHS = (1280, 390)

playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="the playwright package is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="browser tests need Debian's Chromium at "
                                "/usr/bin/chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("uibrowser")
    url = f"sqlite:///{tmp}/asl.db"
    stored = run_asl("batch", str(EXAMPLES), str(EXAMPLES / "portfolio" / "lineage.yaml"),
                     "--db", url)
    assert stored.returncode == 0, stored.stderr
    running = start_server(url, tmp / "serve.log")
    yield running
    assert running.stop() in (0, -signal.SIGTERM), running.log_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


class Shots:
    """Screenshots of the pages, checked for CSP violations on the way."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    def take(self, page: object, name: str) -> None:
        path = self.directory / f"ui-{name}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        self.taken.append(path)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shots]:
    taken = Shots(tmp_path_factory.mktemp("shots"))
    yield taken
    if os.environ.get("ASL_UI_SCREENSHOTS") == "1":
        for path in taken.taken:
            shutil.copyfile(path, DOCS / path.name)


def open_page(browser: object, server: Server, width: int, role: str, person: str
              ) -> tuple[object, list[str]]:
    """A logged-in page of a new browser context, and the console errors it collects."""
    context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server.url}/ui/login")
    page.fill("input[name=token]", server.token(role, person))
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/models")
    return page, errors


@pytest.mark.parametrize("width", WIDTHS)
def test_analyst_filters_opens_a_model_follows_the_graph_and_runs_a_what_if(
        browser: object, server: Server, shots: Shots, width: int) -> None:
    page, errors = open_page(browser, server, width, "analyst", "ann")
    assert page.locator("#models tbody tr").count() == 15
    shots.take(page, f"models-{width}")
    page.select_option("select[name=asl]", "ASL-4")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**asl=ASL-4**")
    assert page.locator("#models tbody tr").count() == 1
    page.select_option("select[name=asl]", "")
    page.fill("input[name=q]", "kite")
    page.click("form.filters button[type=submit]")
    page.click("text=larkspur-kite-4")
    page.wait_for_url("**/ui/models/larkspur-kite-4")
    assert page.locator("h1").inner_text() == "larkspur-kite-4"
    assert page.locator(".s-cannot_rule_out").count() >= 1
    shots.take(page, f"model-{width}")

    # Click an evidence node of the drawing through to the evidence item.
    links = page.locator("svg a")
    hrefs = [links.nth(i).get_attribute("xlink:href") for i in range(links.count())]
    evidence = next(i for i, h in enumerate(hrefs) if h and "/evidence/evidence%3A" in h)
    links.nth(evidence).click()
    page.wait_for_url("**/evidence/**")
    assert page.locator("h1").inner_text().startswith("Evidence")
    assert "Conclusions that rest on it" in page.content()
    page.go_back()

    # A rule node leads to the rule's page.
    rule = next(i for i, h in enumerate(hrefs) if h and h.startswith("/ui/rules/"))
    links.nth(rule).click()
    page.wait_for_url("**/ui/rules/**")
    assert page.locator("h2", has_text="When").count() == 1
    shots.take(page, f"rule-{width}")

    page.goto(f"{server.url}/ui/models/larkspur-kite-4/what-if")
    for safeguard in ("asl3-security.audits", "asl3-security.resourcing"):
        page.select_option(f"select[name='safeguards[{safeguard}].status']", "implemented")
    page.click("form.whatif button[type=submit]")
    page.wait_for_selector("#outcome")
    outcome = page.locator("#outcome").inner_text()
    assert "pause" in outcome and "decision" in outcome
    assert page.locator("#outcome svg").count() == 1
    shots.take(page, f"whatif-{width}")
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_a_draft_pack_is_uploaded_by_one_person_and_activated_by_another(
        browser: object, server: Server, shots: Shots) -> None:
    files = packs.read_pack_files(EXAMPLES / "packs" / "acme-lab")
    author, author_errors = open_page(browser, server, 1280, "rule-author", "rita")
    author.set_default_timeout(120_000)  # the first view runs the diff and tests (children)
    author.goto(f"{server.url}/ui/packs")
    author.fill("input[name=name]", "acme-lab")
    author.fill("textarea[name='pack.yaml']", files["pack.yaml"])
    for i, name in enumerate(sorted(n for n in files if n != "pack.yaml")):
        author.fill(f"input[name=file{i}]", name)
        author.fill(f"textarea[name=text{i}]", files[name])
    author.click("form.upload button[type=submit]")
    author.wait_for_url("**/ui/packs/acme-lab")
    assert "uploaded by rita" in author.content()
    # The diff, the tests and the portfolio impact are worked out in the background; the
    # page follows them (it reloads itself, no script) until the whole impact is there.
    author.wait_for_selector("#impact-counts", timeout=180_000)
    author.wait_for_function("!document.querySelector('.state-running')", timeout=180_000)
    cli = run_asl("impact", "--draft", "acme-lab", "--db", server.db_url, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    counts = author.locator("#impact-counts").inner_text()
    assert f"{expected['unchanged']} unchanged, of {expected['stored']} stored models" \
        in counts and expected["stored"] == 15
    shown = author.locator("#impact-models tbody tr td:first-child").all_inner_texts()
    headline = sorted(m for m, changes in expected["models"].items()
                      if {c["key"] for c in changes} & {"asl", "decision"})
    assert shown == headline and "larkspur-heron-2" in shown

    admin, admin_errors = open_page(browser, server, 1280, "admin", "olga")
    admin.goto(f"{server.url}/ui/packs")
    admin.click("#drafts >> text=acme-lab")
    admin.wait_for_url("**/ui/packs/acme-lab")
    assert "acme.cyber.requires-asl3-security" in admin.content()
    # Kept: another person's view reads the finished impact, it is not worked out again.
    assert admin.locator("#impact .state-running").count() == 0
    assert admin.locator("#impact-counts").inner_text() == counts
    shots.take(admin, "draft-1280")
    admin.click("text=Activate this version")
    admin.wait_for_url("**done=activated**")
    assert "No draft is waiting" in admin.content()
    admin.goto(f"{server.url}/ui/rules?pack=acme-lab")
    assert admin.locator("table.rules tbody tr").count() >= 1
    assert not [e for e in author_errors + admin_errors if "Content Security Policy" in e]


def test_an_uploaded_portfolio_file_runs_to_completion_while_the_page_follows_it(
        browser: object, server: Server, shots: Shots, tmp_path: Path) -> None:
    lines = [json.dumps(yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")),
                        default=str)
             for name in ("security-gap-pause.yaml", "cbrn3-crossed-rule-in.yaml")]
    lines[0] = lines[0].replace('"larkspur-kite-4"', '"larkspur-kite-4-rerun"', 1)
    page, errors = open_page(browser, server, 1280, "analyst", "ann")
    portfolio = tmp_path / "portfolio.jsonl"
    portfolio.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.click("nav >> text=Batches")
    page.set_input_files("input[name=file]", str(portfolio))  # format: from the file name
    page.click("form.upload button[type=submit]")
    page.wait_for_url("**/ui/batches/*")
    page.wait_for_selector("#summary", timeout=120_000)  # the page reloads itself
    assert page.locator("#state").inner_text() == "done"
    assert "Assessed" in page.locator("#summary").inner_text()
    shots.take(page, "batch-1280")
    assert not [e for e in errors if "Content Security Policy" in e], errors
