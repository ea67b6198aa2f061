"""The web UI's packs page: a rule author uploads a draft from the form, its diff against
the active stack is shown, and only an admin who did not upload it activates it (four
eyes), through the API's own upload and activation (same checks, same decision log)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from service_server import make_token, run_asl
from test_ui import ORIGIN, csrf_of, login

from service.app import create_app
from service.config import ServiceConfig
from store import audit, packs
from store.db import connect

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
ACME = EXAMPLES / "packs" / "acme-lab"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('uipacks')}/asl.db"
    assert run_asl("db", "upgrade", "--db", url).returncode == 0
    return url


@pytest.fixture(scope="module")
def app(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(ServiceConfig(db_url)), base_url=ORIGIN) as client:
        yield client


def as_person(app: TestClient, db_url: str, role: str, person: str) -> TestClient:
    client = TestClient(app.app, base_url=ORIGIN)
    assert login(client, make_token(db_url, role, person)).status_code == 303
    return client


def upload_form(files: dict[str, str], name: str = "acme-lab") -> dict[str, str]:
    extra = sorted(n for n in files if n != "pack.yaml")
    form = {"name": name, "pack.yaml": files["pack.yaml"]}
    for i, file_name in enumerate(extra):
        form.update({f"file{i}": file_name, f"text{i}": files[file_name]})
    return form


def post(client: TestClient, path: str, data: dict[str, str]) -> object:
    csrf = csrf_of(client.get("/ui/packs").text)
    return client.post(path, data={**data, "csrf": csrf}, headers={"Origin": ORIGIN},
                       follow_redirects=False)


def _reviewed(client: TestClient, name: str) -> str:
    """The draft's page once its diff, tests and impact are there: they are worked out
    in the background, and until then the page says so and reloads itself."""
    deadline = time.monotonic() + 120
    while True:
        page = client.get(f"/ui/packs/{name}").text
        if '<meta http-equiv="refresh"' not in page:
            return page
        assert "state-running" in page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def test_upload_review_and_four_eyes_activation(app: TestClient, db_url: str) -> None:
    viewer = as_person(app, db_url, "viewer", "vic")
    author = as_person(app, db_url, "rule-author", "rita")
    admin = as_person(app, db_url, "admin", "adam")
    other = as_person(app, db_url, "admin", "olga")
    files = packs.read_pack_files(ACME)
    page = viewer.get("/ui/packs")
    assert page.status_code == 200 and "No draft is waiting" in page.text
    assert "Upload a draft overlay" not in page.text
    assert post(viewer, "/ui/packs", upload_form(files)).status_code == 403

    bad = post(author, "/ui/packs", upload_form({**files, "rules/10-acme.yaml": "- id: [\n"}))
    assert bad.status_code == 422 and "rules/10-acme.yaml" in bad.text

    done = post(author, "/ui/packs", upload_form(files))
    assert done.status_code == 303 and done.headers["location"] == "/ui/packs/acme-lab"
    assert "<td>acme-lab</td>" in viewer.get("/ui/packs").text  # listed, not linked
    assert viewer.get("/ui/packs/acme-lab").status_code == 403  # the API's diff role
    page = _reviewed(admin, "acme-lab")
    assert "uploaded by rita" in page
    assert "+ rule <code>acme.cyber.requires-asl3-security</code>" in page
    assert "~ <code>assessment.trigger.months</code>" in page  # the rule it replaces
    assert re.search(r"(\d+) of \1 passed", page)  # its cases, run over the active stack
    version = re.search(r'name="version" value="([^"]+)"', page)
    assert version
    assert 'name="version"' not in author.get("/ui/packs/acme-lab").text  # not an admin
    assert post(author, "/ui/packs/acme-lab/activate",
                {"version": version.group(1)}).status_code == 403

    # The admin uploads the draft again: now they may not activate it themselves.
    assert post(admin, "/ui/packs", upload_form(files)).status_code == 303
    mine = admin.get("/ui/packs/acme-lab").text
    assert "another admin must activate it" in mine and 'name="version"' not in mine
    refused = post(admin, "/ui/packs/acme-lab/activate", {"version": version.group(1)})
    assert refused.status_code == 409 and "four eyes" in refused.text
    stale = post(other, "/ui/packs/acme-lab/activate", {"version": "sha256:0000"})
    assert stale.status_code == 409 and "has changed since" in stale.text

    activated = post(other, "/ui/packs/acme-lab/activate", {"version": version.group(1)})
    assert activated.status_code == 303, activated.text
    page = viewer.get("/ui/packs").text
    assert "No draft is waiting" in page and 'href="/ui/rules?pack=acme-lab"' in page
    assert "acme.cyber.requires-asl3-security" in viewer.get("/ui/rules").text
    engine = connect(db_url)
    try:
        log = [(e.action, e.actor) for e in audit.entries(engine) if e.action.startswith("pack")]
    finally:
        engine.dispose()
    assert log == [("pack.upload", "rita"), ("pack.upload", "adam"),
                   ("pack.activate", "olga")]


def test_a_pasted_portfolio_runs_as_a_batch_to_its_summary(app: TestClient,
                                                           db_url: str) -> None:
    viewer = as_person(app, db_url, "viewer", "vic")
    assert viewer.get("/ui/batches").status_code == 403
    analyst = as_person(app, db_url, "analyst", "ann")
    page = analyst.get("/ui/batches")
    assert page.status_code == 200 and 'name="portfolio"' in page.text
    lines = [json.dumps(yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8")),
                        default=str)
             for name in ("security-gap-pause.yaml", "cbrn4-asl4-pause.yaml")]
    queued = analyst.post("/ui/batches", data={"csrf": csrf_of(page.text), "format": "jsonl",
                                               "portfolio": "\n".join(lines)},
                          headers={"Origin": ORIGIN}, follow_redirects=False)
    assert queued.status_code == 303, queued.text
    where = queued.headers["location"]
    deadline = time.monotonic() + 120
    while True:
        shown = analyst.get(where).text
        if 'id="summary"' in shown or time.monotonic() > deadline:
            break
        assert '<meta http-equiv="refresh" content="2">' in shown  # live while it runs
        time.sleep(0.5)
    assert 'id="summary"' in shown, shown
    assert "<dt>Assessed</dt><dd>2</dd>" in shown
    assert 'http-equiv="refresh"' not in shown
    assert where.rsplit("/", 1)[1] in analyst.get("/ui/batches").text
    assert ">larkspur-kite-4</a>" in analyst.get("/ui/models").text


def test_a_portfolio_file_is_uploaded_as_a_multipart_form(app: TestClient,
                                                          db_url: str) -> None:
    analyst = as_person(app, db_url, "analyst", "ulla")
    page = analyst.get("/ui/batches")
    assert 'enctype="multipart/form-data"' in page.text and 'type="file"' in page.text
    csrf = csrf_of(page.text)
    text = (EXAMPLES / "asl2-comprehensive-all-clear.yaml").read_text(encoding="utf-8")

    def send(files: dict[str, tuple[str, bytes]] | None, **data: str) -> object:
        return analyst.post("/ui/batches", data={"csrf": csrf, **data}, files=files,
                            headers={"Origin": ORIGIN}, follow_redirects=False)

    queued = send({"file": ("one.yaml", text.encode())}, format="auto")
    assert queued.status_code == 303, queued.text  # YAML, from the file's name
    where = queued.headers["location"]
    deadline = time.monotonic() + 120
    while 'id="summary"' not in (shown := analyst.get(where).text) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "<dt>Assessed</dt><dd>1</dd>" in shown, shown
    engine = connect(db_url)
    try:
        submitted = [e for e in audit.entries(engine) if e.action == "batch.submit"]
    finally:
        engine.dispose()
    assert submitted[-1].actor == "ulla"

    unknown = send({"file": ("one.txt", text.encode())}, format="auto")
    assert unknown.status_code == 422 and "one.txt" in unknown.text
    both = send({"file": ("one.yaml", text.encode())}, format="auto", portfolio=text)
    assert both.status_code == 422 and "not both" in both.text
    forged = analyst.post("/ui/batches", data={"csrf": "forged", "format": "yaml"},
                          files={"file": ("one.yaml", text.encode())},
                          headers={"Origin": ORIGIN}, follow_redirects=False)
    assert forged.status_code == 403
    foreign = analyst.post("/ui/batches", data={"csrf": csrf, "format": "yaml"},
                           files={"file": ("one.yaml", text.encode())},
                           headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert foreign.status_code == 403
    two = analyst.post("/ui/batches", data={"csrf": csrf, "format": "yaml"},
                       files=[("file", ("a.yaml", text.encode())),
                              ("file", ("b.yaml", text.encode()))],
                       headers={"Origin": ORIGIN}, follow_redirects=False)
    assert two.status_code == 400 and "file" in two.text.lower()


def test_the_upload_has_the_api_batch_body_limit(db_url: str) -> None:
    config = ServiceConfig(db_url, max_body=1_000, max_batch_body=4_000)
    with TestClient(create_app(config), base_url=ORIGIN) as app:
        analyst = as_person(app, db_url, "analyst", "lim")
        csrf = csrf_of(analyst.get("/ui/batches").text)
        text = (EXAMPLES / "asl2-patch-carryover.yaml").read_text(encoding="utf-8")
        assert 1_000 < len(text) < 3_000  # over the general limit, under the batch one
        ok = analyst.post("/ui/batches", data={"csrf": csrf, "format": "yaml"},
                          files={"file": ("one.yaml", text.encode())},
                          headers={"Origin": ORIGIN}, follow_redirects=False)
        assert ok.status_code == 303, ok.text
        big = analyst.post("/ui/batches", data={"csrf": csrf, "format": "yaml"},
                           files={"file": ("big.yaml", (text * 3).encode())},
                           headers={"Origin": ORIGIN}, follow_redirects=False)
        assert big.status_code == 413 and "4,000-byte limit" in big.text


def _finished_impact(client: TestClient, name: str) -> str:
    """The draft's page once its impact job has finished (it runs in the background;
    until then the page says how far it got and reloads itself)."""
    deadline = time.monotonic() + 120
    while True:
        page = client.get(f"/ui/packs/{name}").text
        section = page[page.index('id="impact"'):page.index('id="tests"')]
        if 'id="impact-counts"' in section and "state-running" not in section:
            return section
        assert "could not be worked out" not in section, section
        assert '<meta http-equiv="refresh" content="2">' in page  # live without JS
        assert time.monotonic() < deadline, section
        time.sleep(0.2)


def test_a_draft_shows_which_stored_models_it_would_change(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/asl.db"
    stored = run_asl("batch", str(EXAMPLES), "--db", url)
    assert stored.returncode == 0, stored.stderr
    with TestClient(create_app(ServiceConfig(url)), base_url=ORIGIN) as app:
        author = as_person(app, url, "rule-author", "rhea")
        assert post(author, "/ui/packs", upload_form(packs.read_pack_files(ACME))
                    ).status_code == 303
        section = _finished_impact(author, "acme-lab")
        whole = author.get("/ui/packs/acme-lab/impact.json").json()
        again = _reviewed(author, "acme-lab")  # done: kept, not worked out again
        assert again[again.index('id="impact"'):again.index('id="tests"')] == section
        # A new stored assessment is another record state: the impact is worked out
        # again, and meanwhile the page shows the one it had, saying so.
        restored = run_asl("batch", str(EXAMPLES / "security-gap-pause.yaml"), "--db", url,
                           "--force")
        assert restored.returncode == 0, restored.stderr
        stale = author.get("/ui/packs/acme-lab").text
        assert 'http-equiv="refresh"' in stale and "state-running" in stale
        assert "Meanwhile, the impact worked out" in stale and 'id="impact-counts"' in stale
        assert "Meanwhile" not in _finished_impact(author, "acme-lab")
        assert author.get("/ui/packs/acme-lab/impact.json").json() == whole
    # The one implementation: `asl impact --draft` on the same database and draft.
    cli = run_asl("impact", "--draft", "acme-lab", "--db", url, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert whole == {k: v for k, v in expected.items()
                     if k not in ("draft", "version", "stack")}
    # And what `asl rules diff --portfolio` finds for the same evidence and packs.
    diff = run_asl("rules", "diff", "rules/rsp-2.1", str(ACME), "--portfolio",
                   str(EXAMPLES), "--format", "json")
    assert diff.returncode == 0, diff.stderr
    portfolio = json.loads(diff.stdout)["portfolio"]
    assert expected["models"] == portfolio["models"]
    headline = sorted(m for m, changes in expected["models"].items()
                      if {c["key"] for c in changes} & {"asl", "level", "decision"})
    assert headline == ["larkspur-heron-2"]
    rows = re.findall(r'<tr><td><a href="/ui/models/([^"]+)">', section)
    assert rows == headline
    assert "<code>asl</code> <span class=\"old\">ASL-2</span> → <span class=\"new\">ASL-3" \
        in section
    assert "<code>decision</code> <span class=\"old\">proceed</span> → " \
        "<span class=\"new\">pause" in section
    total = expected["stored"]
    assert total == len(expected["models"]) + expected["unchanged"] == 10
    assert f"{expected['unchanged']} unchanged, of {total} stored models" in section
