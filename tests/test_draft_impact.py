"""A draft pack's impact over the stored record (batch.impact, `asl impact --draft`):
only the models that could change are assessed again, and the answer is the one a
full comparison of every stored model's evidence under both stacks gives."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from service_server import run_asl
from sqlalchemy import event

from batch.impact import _links, candidates, draft_impact
from batch.runner import pack_fingerprint, reachable
from engine.assess import evaluator_for
from engine.lineage import Lineage
from engine.packdiff import portfolio_changes
from store import packs
from store.db import connect
from store.record import Store

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"  # models carrying others' levels over
ACME_RULES = EXAMPLES / "packs" / "acme-lab" / "rules" / "10-acme.yaml"


def cadence_pack(directory: Path, months: int) -> Path:
    """An overlay that only replaces one rule: a comprehensive assessment is due after
    `months` months of gains (acme-lab's rule, another bar)."""
    text = ACME_RULES.read_text()
    rule = text[text.index("- id: assessment.trigger.months"):]
    (directory / "rules").mkdir(parents=True)
    (directory / "pack.yaml").write_text("name: cadence\ntitle: Another cadence\n")
    (directory / "rules" / "10-cadence.yaml").write_text(
        rule.replace("gte: 4", f"gte: {months}"))
    return directory


def findings_pack(directory: Path, kind: str = "finding") -> Path:
    """An overlay that only adds a rule: any fact of `kind` (a finding) calls for the
    ASL-3 Security Standard."""
    (directory / "rules").mkdir(parents=True)
    (directory / "pack.yaml").write_text(f"name: {kind}s\ntitle: {kind}s call for more\n")
    (directory / "rules" / f"10-{kind}s.yaml").write_text(
        f"- id: {kind}s.trigger\n"
        f"  title: Any {kind} calls for the ASL-3 Security Standard\n"
        "  cite: RSP v2.1 §3.1\n"
        f"  because: \"a {kind} was recorded\"\n"
        "  when:\n"
        f"    - match: {kind}\n"
        "      as: f\n"
        "  then:\n"
        "    requirement: {standard: security, level: ASL-3, rank: 3}\n")
    return directory


def copied(url: str, directory: Path) -> str:
    """A copy of the SQLite record at `url` in `directory` (its URL), for a test that
    changes it: the module's record stays as the other tests expect it."""
    target = directory / "copy.db"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as source, \
            sqlite3.connect(target) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The examples stored, and a one-rule draft uploaded beside them."""
    where = tmp_path_factory.mktemp("draftimpact")
    url = f"sqlite:///{where}/asl.db"
    done = run_asl("batch", str(EXAMPLES), str(LINEAGE), "--db", url)
    assert done.returncode == 0, done.stderr
    draft = cadence_pack(where / "cadence", 1)
    engine = connect(url)
    with engine.begin() as conn:
        packs.save_draft(conn, "cadence", packs.read_pack_files(draft), "rhea",
                         "2026-12-02T00:00:00Z")
    engine.dispose()
    return url, draft


def test_only_models_that_could_change_are_assessed_and_the_answer_is_whole(
        record: tuple[str, Path]) -> None:
    url, draft = record
    before, after = evaluator_for([]), evaluator_for([str(draft)])
    store = Store(connect(url))
    latest = list(store.all_latest(framework=before.pack.framework))
    chosen = candidates(store, before.pack, after.pack, latest)
    # The replaced rule needs a reference; fennwick-orca-1 has none and cannot change.
    assert "fennwick-orca-1" not in chosen and len(chosen) < len(latest)
    told: list[tuple[str, int, int]] = []
    found = draft_impact(store, before, after, before.pack.framework,
                         lambda *p: told.append(p))
    # Every stored model's evidence assessed with both stacks gives the same changes.
    full = portfolio_changes(before, after, [str(EXAMPLES), str(LINEAGE)])
    assert found.models == full.models
    assert {"larkspur-wren-3.1", "oriel-meridian-2.1", "corvid-atlas-5-chat"} <= set(
        found.models)  # the last from the lineage portfolio
    assert found.stored == len(latest) == len(found.models) + found.unchanged
    assert found.reassessed == len(chosen)
    assert told[-1] == ("assessing them with both stacks", len(chosen), len(chosen))
    store.engine.dispose()


def test_the_candidates_of_two_stacks_read_the_record_once(
        tmp_path: Path, record: tuple[str, Path]) -> None:
    """Where the stored results were made with neither stack, each stored version's
    rules fired and kinds present are read once for both stacks, and the candidates are
    those either stack finds alone (here a model with a precaution and no reference, and
    models with a reference and none)."""
    url, draft = record
    before = evaluator_for([str(findings_pack(tmp_path / "precautions", "precaution"))]).pack
    after = evaluator_for([str(draft)]).pack
    store = Store(connect(url))
    latest = list(store.all_latest(framework=before.framework))
    assert {s.pack_version for s in latest}.isdisjoint({before.version, after.version})
    alone = [reachable(store, {p.version: pack_fingerprint(p)}, latest)
             for p in (before, after)]
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _k, statement, *_: statements.append(statement))
    chosen = candidates(store, before, after, latest)
    versions = len({s.pack_version for s in latest})
    assert [sum(f"assessment.{column}" in s for s in statements)
            for column in ("fired", "kinds")] == [versions, versions]
    assert alone[0] - alone[1] and alone[1] - alone[0]  # each stack finds its own
    lineage = Lineage(_links(store, latest))
    assert set(chosen) == lineage.downstream(alone[0] | alone[1])
    store.engine.dispose()


def test_an_added_rule_reaches_only_the_models_with_the_kinds_it_needs(
        tmp_path: Path, record: tuple[str, Path]) -> None:
    url, _ = record
    before, after = evaluator_for([]), evaluator_for([str(findings_pack(tmp_path))])
    store = Store(connect(url))
    found = draft_impact(store, before, after, before.pack.framework)
    kinds = store.kinds_present([s.id for s in store.all_latest()])
    without = sum("finding" not in k for k in kinds.values())
    # Those with a finding, and the models carrying a level over from them.
    assert without > 0 and found.stored - without < found.reassessed < found.stored
    assert found.models == portfolio_changes(before, after, [str(EXAMPLES), str(LINEAGE)]).models
    assert found.models  # it does change some
    store.engine.dispose()


def test_asl_impact_draft_prints_the_same_in_text_and_json(record: tuple[str, Path]
                                                           ) -> None:
    url, _ = record
    done = run_asl("impact", "--draft", "cadence", "--db", url, "--format", "json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["draft"] == "cadence" and found["stack"] == []
    assert {"larkspur-wren-3.1", "oriel-meridian-2.1"} <= set(found["models"])
    text = run_asl("impact", "--draft", "cadence", "--db", url)
    assert text.returncode == 0, text.stderr
    assert (f"{found['stored']} stored model(s), {found['reassessed']} could change"
            in text.stdout)
    assert "larkspur-wren-3.1\n  actions" in text.stdout


def test_asl_impact_draft_refuses_what_it_cannot_use(record: tuple[str, Path],
                                                     tmp_path: Path) -> None:
    url, _ = record
    missing = run_asl("impact", "--draft", "nope", "--db", url)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"asl: no draft pack 'nope' in {url}"
    nodb = run_asl("impact", "--draft", "cadence", "--db", f"{tmp_path}/none.db")
    assert nodb.returncode == 2 and "no database at" in nodb.stderr
    assert len(nodb.stderr.splitlines()) == 1
    both = run_asl("impact", "--draft", "cadence", "--db", url, "examples")
    assert both.returncode == 2 and "give no FILES" in both.stderr


def test_asl_impact_draft_compares_over_the_active_stack_it_names(
        record: tuple[str, Path], tmp_path: Path) -> None:
    """With overlays active, the answer is the impact of the draft over that stack (the
    draft in place of the active version of itself), and the stack it names is the one
    both sides were assessed with."""
    url, draft = record
    url = copied(url, tmp_path)
    findings = findings_pack(tmp_path / "findings")
    active = cadence_pack(tmp_path / "cadence", 2)
    engine = connect(url)
    with engine.begin() as conn:
        for name, directory in (("findings", findings), ("cadence", active)):
            pending = packs.save_draft(conn, name, packs.read_pack_files(directory),
                                       "rhea", "2026-12-01T00:00:00Z")
            packs.activate(conn, pending, "rhea", "2026-12-01T00:00:00Z")
        packs.save_draft(conn, "cadence", packs.read_pack_files(draft), "rhea",
                         "2026-12-02T00:00:00Z")
    engine.dispose()
    done = run_asl("impact", "--draft", "cadence", "--db", url, "--format", "json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["stack"] == [
        {"name": name, "version": packs.files_version(packs.read_pack_files(directory))}
        for name, directory in (("findings", findings), ("cadence", active))]
    assert found["version"] == packs.files_version(packs.read_pack_files(draft))
    before = evaluator_for([str(findings), str(active)])
    after = evaluator_for([str(findings), str(draft)])
    store = Store(connect(url))
    expected = draft_impact(store, before, after, before.pack.framework).to_json()
    store.engine.dispose()
    assert {k: found[k] for k in expected} == json.loads(json.dumps(expected))
    # Not the impact over the built-in pack alone: the stack was used.
    alone = run_asl("impact", "--draft", "cadence", "--db", record[0], "--format", "json")
    assert json.loads(alone.stdout)["models"] != found["models"] != {}


def test_asl_impact_draft_refuses_a_damaged_pack_table_in_one_line(
        record: tuple[str, Path], tmp_path: Path) -> None:
    """A record whose stored packs cannot be read is one line, exit 2, as for every
    command that reads the active stack (never a traceback)."""
    url = copied(record[0], tmp_path)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("ALTER TABLE pack_active RENAME TO pack_active_old")
        conn.execute("CREATE TABLE pack_active (x INTEGER)")
    done = run_asl("impact", "--draft", "cadence", "--db", url)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith(f"asl: cannot use database {url}: its stored packs "
                                  "cannot be read: no such column")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
