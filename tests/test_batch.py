"""`asl batch` and `asl db upgrade`, run the way a user runs them: `cli.main.main` through
click's CliRunner, with `--db URL` and `--no-progress`, on real databases.

Every test that writes the record takes `db_url` (tests/pg_server.py), so it runs on a
SQLite file and on a PostgreSQL database. What a batch stored is read back through
store.record.Store, and what it computed is checked against `asl assess` on the same
evidence: a batch must store exactly what assessing the portfolio in one go prints.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES
from sqlalchemy import func, select
from synth import generate_models, write_portfolio

from batch.executors import CHUNK
from cli.batch import SHOW_AT_MOST
from cli.main import main
from engine.framework import default_spec
from engine.yamlsafe import load_yaml
from knowledge_graph.compare import contract_values
from store.db import connect, current_revision, head_revision
from store.record import A, B, Store, Summary

DECISION_ORDER = default_spec().decisions  # rsp-2.1's, most restrictive first

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
ACME = EXAMPLES / "packs" / "acme-lab"
EXAMPLE_MODELS = 10
LINEAGE_MODELS = 5
CORVID_DESCENDANTS = {"corvid-atlas-5-chat", "corvid-atlas-5-code", "corvid-atlas-5.1",
                      "corvid-atlas-6-pilot"}  # each carries over corvid-atlas-5's ASL


# -- running the command line ---------------------------------------------------------


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def batch(db: str, *args: str | Path) -> Result:
    """`asl batch ARGS --db DB --no-progress`."""
    return run("batch", *args, "--db", db, "--no-progress")


def assess_lines(*paths: str | Path, packs: Sequence[str | Path] = ()) -> list[str]:
    """`asl assess PATHS --format jsonl` (exit 0), its lines sorted by model."""
    pack_args = [arg for pack in packs for arg in ("--pack", str(pack))]
    result = run("assess", *paths, *pack_args, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    return sorted(result.stdout.splitlines(), key=lambda line: json.loads(line)["model"])


def as_file(lines: Sequence[str]) -> bytes:
    """Lines as a JSON Lines file holds them."""
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def by_model(lines: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {(doc := json.loads(line))["model"]: doc for line in lines}


def line_for(lines: Sequence[str], model: str) -> str:
    return next(line for line in lines if json.loads(line)["model"] == model)


# -- reading the record ---------------------------------------------------------------


@dataclass
class Record:
    """What the database holds, read through the store (engine disposed at once)."""

    latest: dict[str, Summary]
    assessments: int
    batches: int
    runs: list[tuple[list[str], int, int, int, bool]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # newest, by model
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # newest, by model


def record(url: str) -> Record:
    engine = connect(url)
    try:
        store = Store(engine)
        latest = {s.model_id: s for s in store.all_latest()}
        results = store.results([s.id for s in latest.values()])
        bodies = store.evidence(s.evidence_hash for s in latest.values())
        with engine.connect() as conn:
            assessments = conn.execute(select(func.count()).select_from(A)).scalar_one()
            batches = conn.execute(select(func.count()).select_from(B)).scalar_one()
            runs = [(row.inputs, row.assessed, row.skipped, row.rejected,
                     row.finished is not None)
                    for row in conn.execute(select(B).order_by(B.c.id))]
        return Record(latest, assessments, batches, runs,
                      {m: results[s.id] for m, s in latest.items()},
                      {m: bodies[s.evidence_hash] for m, s in latest.items()})
    finally:
        engine.dispose()


def stored_line(result: dict[str, Any]) -> str:
    """A stored result as `asl assess --format jsonl` prints it."""
    return json.dumps(result, sort_keys=True, ensure_ascii=False)


# -- the closing summary --------------------------------------------------------------

HEAD = re.compile(r"(batch|re-assessment) (\d+): ([\d,]+) models? with (\S+) (\S+) into (.+)")
COUNTS = re.compile(r"  assessed (\d+), unchanged (\d+) \(skipped\), rejected (\d+)")
ACTION = re.compile(r"    (\S+) +(ASL-\d) +(\S+) +(\d+) actions")
CHANGED = re.compile(r"    (\S+) +(ASL-\d) (\S+) +-> (ASL-\d) (\S+)")
STACK = re.compile(r"  pack stack   differs for ([\d,]+) models? \(re-assessed\): (.+) -> (.+)")


@dataclass
class Printed:
    """The closing summary of `asl batch`, parsed line by line (every line accounted for)."""

    kind: str
    models: int
    pack: str
    where: str
    assessed: int
    unchanged: int
    rejected: int
    by_asl: dict[str, int]
    by_decision: dict[str, int]
    need_total: int
    changed_total: int
    need_action: list[tuple[str, str, str, int]]  # model, ASL, decision, number of actions
    changed: list[tuple[str, tuple[str, str], tuple[str, str]]]  # model, old, new
    details: dict[str, list[str]]  # model -> its other changed keys, `key old -> new`
    stack: tuple[int, str, str] | None  # models re-assessed with another stack, old, new


def _counts(line: str, label: str) -> dict[str, int]:
    assert line.startswith(label), line
    text = line[len(label):]
    if text == "-":
        return {}
    return {key: int(value) for key, value in (pair.split(": ") for pair in text.split(", "))}


def _listed(lines: list[str], pattern: re.Pattern[str], total: int,
            more_hint: str) -> tuple[list[re.Match[str]], list[str]]:
    """The first min(total, SHOW_AT_MOST) lines matching `pattern`, then an "... and N
    more" line when there are more; the lines after them."""
    shown = min(total, SHOW_AT_MOST)
    matches = [pattern.fullmatch(line) for line in lines[:shown]]
    assert all(matches), lines[:shown]
    rest = lines[shown:]
    if total > SHOW_AT_MOST:
        assert rest[0] == f"    ... and {total - SHOW_AT_MOST} more ({more_hint})", rest[0]
        rest = rest[1:]
    return [m for m in matches if m], rest


def parse_summary(stdout: str) -> Printed:
    lines = stdout.splitlines()
    head = HEAD.fullmatch(lines[0])
    counts = COUNTS.fullmatch(lines[1])
    assert head and counts, stdout
    stack_line = STACK.fullmatch(lines[2])
    stack = None
    if stack_line:
        stack = (int(stack_line.group(1).replace(",", "")), stack_line.group(2),
                 stack_line.group(3))
        lines = lines[:2] + lines[3:]
    by_asl = _counts(lines[2], "  by ASL       ")
    by_decision = _counts(lines[3], "  by decision  ")
    need = re.fullmatch(r"  need action  (\d+)", lines[4])
    assert need, lines[4]
    actions, rest = _listed(lines[5:], ACTION, int(need.group(1)), "asl list --decision "
                            "pause|restrict_deployment|assessment_required")
    changed_head = re.fullmatch(r"  changed      (\d+) \(output contract, since the "
                                r"previous assessment\)", rest[0])
    assert changed_head, rest[0]
    # Each changed model's line, then its other changed keys indented below it.
    details: dict[str, list[str]] = {}
    headlines = []
    for line in rest[1:]:
        if line.startswith("      "):
            details[headlines[-1].split()[0]].append(line.strip())
        else:
            headlines.append(line)
            details.setdefault(line.split()[0], [])
    changed, rest = _listed(headlines, CHANGED, int(changed_head.group(1)), "asl diff MODEL")
    assert rest == [], stdout
    return Printed(
        kind=head.group(1), models=int(head.group(3).replace(",", "")), pack=head.group(4),
        where=head.group(6),
        assessed=int(counts.group(1)), unchanged=int(counts.group(2)),
        rejected=int(counts.group(3)), by_asl=by_asl, by_decision=by_decision,
        need_total=int(need.group(1)), changed_total=int(changed_head.group(1)),
        need_action=[(m.group(1), m.group(2), m.group(3), int(m.group(4))) for m in actions],
        changed=[(m.group(1), (m.group(2), m.group(3)), (m.group(4), m.group(5)))
                 for m in changed],
        details={m.group(1): details[m.group(1)] for m in changed}, stack=stack)


def changes(before: Record, after: Record
            ) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
    """Models whose newest result differs in any contract key between two readings of
    the record, with their ASL and decision before and after."""
    return [(m, (before.latest[m].level, before.latest[m].decision),
             (after.latest[m].level, after.latest[m].decision))
            for m in sorted(after.latest)
            if m in before.latest and contract_values(before.results[m])
            != contract_values(after.results[m])]


def other_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What the summary lists under a changed model: every contract key but its ASL and
    decision that differs, as `key old -> new`."""
    before, after = contract_values(old), contract_values(new)
    return [f"{key} {before.get(key)!r} -> {after.get(key)!r}"
            for key in sorted(before.keys() | after.keys())
            if key not in ("asl", "decision") and before.get(key) != after.get(key)]


# -- evidence files -------------------------------------------------------------------


@pytest.fixture
def examples(tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of examples/ (its ten models) and examples/portfolio/lineage.yaml."""
    directory = tmp_path / "examples"
    directory.mkdir()
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    (directory / "portfolio").mkdir()
    lineage = directory / "portfolio" / "lineage.yaml"
    shutil.copy(LINEAGE, lineage)
    return directory, lineage


def lineage_document(model: str) -> dict[str, Any]:
    """One model of examples/portfolio/lineage.yaml as plain JSON data."""
    portfolio = load_yaml(LINEAGE.read_text(encoding="utf-8"))
    doc = next(d for d in portfolio["models"] if d["model"]["id"] == model)
    return json.loads(json.dumps(doc, default=str))


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def example_documents() -> list[dict[str, Any]]:
    return [json.loads(json.dumps(load_yaml(p.read_text(encoding="utf-8")), default=str))
            for p in sorted(EXAMPLES.glob("*.yaml"))]


# -- 1. a portfolio into the record, again, and forced -------------------------------


def test_batch_stores_every_model_skips_them_when_unchanged_and_forces(
        db_url: str, tmp_path: Path) -> None:
    portfolio = (EXAMPLES, LINEAGE)
    expected = assess_lines(*portfolio)
    assert len(expected) == EXAMPLE_MODELS + LINEAGE_MODELS

    first = batch(db_url, *portfolio, "--output", tmp_path / "first.jsonl")
    assert first.exit_code == 0, first.stderr
    assert first.stderr == ""
    printed = parse_summary(first.stdout)
    assert (printed.kind, printed.models, printed.assessed, printed.unchanged,
            printed.rejected) == ("batch", 15, 15, 0, 0)
    assert (tmp_path / "first.jsonl").read_bytes() == as_file(expected)
    assert printed.where.endswith(db_url.rsplit("/", 1)[1])  # names the database
    stored = record(db_url)
    assert sorted(stored.latest) == [json.loads(line)["model"] for line in expected]
    assert (stored.assessments, stored.batches) == (15, 1)
    assert [stored_line(stored.results[m]) for m in sorted(stored.results)] == expected

    again = batch(db_url, *portfolio, "--output", tmp_path / "again.jsonl")
    assert again.exit_code == 0, again.stderr
    printed = parse_summary(again.stdout)
    assert (printed.models, printed.assessed, printed.unchanged, printed.changed) == (
        15, 0, 15, [])
    # Every portfolio model is in --output, the skipped ones included, byte for byte.
    assert ((tmp_path / "again.jsonl").read_bytes()
            == (tmp_path / "first.jsonl").read_bytes())
    after = record(db_url)
    assert (after.assessments, after.batches) == (15, 2)
    assert {m: s.id for m, s in after.latest.items()} == {
        m: s.id for m, s in stored.latest.items()}

    forced = batch(db_url, *portfolio, "--force", "--output", tmp_path / "forced.jsonl")
    assert forced.exit_code == 0, forced.stderr
    printed = parse_summary(forced.stdout)
    assert (printed.assessed, printed.unchanged, printed.changed) == (15, 0, [])
    assert (tmp_path / "forced.jsonl").read_bytes() == as_file(expected)
    forced_record = record(db_url)
    assert forced_record.assessments == 30
    # Each run is recorded, finished, with what it did.
    inputs = [str(EXAMPLES), str(LINEAGE)]
    assert forced_record.runs == [(inputs, 15, 0, 0, True), (inputs, 0, 15, 0, True),
                                  (inputs, 15, 0, 0, True)]
    assert all(forced_record.latest[m].id > stored.latest[m].id for m in stored.latest)
    # The output file is written whole, through a temporary file that does not linger.
    assert sorted(p.name for p in tmp_path.iterdir() if "jsonl" in p.name) == [
        "again.jsonl", "first.jsonl", "forced.jsonl"]


def test_csv_output_has_a_header_and_a_row_per_model(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    result = batch(db_url, EXAMPLES, LINEAGE, "--output", out)
    assert result.exit_code == 0, result.stderr
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:6] == ["model", "asl", "required.deployment", "required.security",
                          "comprehensive_assessment_required", "decision"]
    assert "thresholds.CBRN-3" in header and "ongoing_assessment.Cyber operations" in header
    assert len(rows) == 15
    expected = by_model(assess_lines(EXAMPLES, LINEAGE))
    stored = record(db_url).latest
    assert [row["model"] for row in rows] == sorted(expected)
    for row in rows:
        doc = expected[row["model"]]
        assert (row["asl"], row["decision"]) == (doc["asl"], doc["decision"])
        assert (row["asl"], row["decision"]) == (stored[row["model"]].level,
                                                 stored[row["model"]].decision)
        assert row["required.security"] == doc["required"]["security"]
        assert row["actions"].split() == doc["actions"]
        assert row["thresholds.CBRN-3"] == doc["thresholds"]["CBRN-3"]


def test_bad_output_is_a_usage_error_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    assert batch(db_url, EXAMPLES, LINEAGE).exit_code == 0
    before = record(db_url)
    for output, problem in ((tmp_path / "results.txt", "expected a .jsonl or .csv file name"),
                            (tmp_path / "missing" / "results.jsonl",
                             f"directory {tmp_path / 'missing'} does not exist")):
        result = batch(db_url, EXAMPLES, LINEAGE, "--force", "--output", output)
        assert result.exit_code == 2, result.output
        assert "--output" in result.stderr and problem in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
        assert not output.exists()
    after = record(db_url)
    assert (after.assessments, after.batches) == (before.assessments, before.batches)
    assert {m: s.id for m, s in after.latest.items()} == {
        m: s.id for m, s in before.latest.items()}


def test_usage_errors_for_portfolios_and_reassess(db_url: str) -> None:
    nothing = batch(db_url)
    assert nothing.exit_code == 2 and "give at least one PORTFOLIO" in nothing.stderr
    both = batch(db_url, EXAMPLES, "--reassess")
    assert both.exit_code == 2 and "--reassess re-runs stored models" in both.stderr
    stored = record(db_url)
    assert (stored.assessments, stored.batches) == (0, 0)


# -- 2. lineage across files and against the record -----------------------------------


def test_carried_over_determination_comes_from_the_record(db_url: str,
                                                          tmp_path: Path) -> None:
    base_doc = lineage_document("corvid-atlas-5")
    chat_doc = lineage_document("corvid-atlas-5-chat")
    lca = chat_doc["model"]["last_comprehensive_assessment"]
    assert lca["model"] == "corvid-atlas-5" and "determination" not in lca
    base = write_json(tmp_path / "atlas-5.json", base_doc)
    chat = write_json(tmp_path / "atlas-5-chat.json", chat_doc)
    together_lines = assess_lines(base, chat)
    together = by_model(together_lines)
    alone = by_model(assess_lines(chat))["corvid-atlas-5-chat"]

    first = batch(db_url, base)
    assert first.exit_code == 0, first.stderr
    assert parse_summary(first.stdout).assessed == 1
    second = batch(db_url, chat, "--output", tmp_path / "chat.jsonl")
    assert second.exit_code == 0, second.stderr
    assert parse_summary(second.stdout).assessed == 1
    assert (tmp_path / "chat.jsonl").read_bytes() == as_file(
        [line_for(together_lines, "corvid-atlas-5-chat")])
    # The record made the difference: without atlas-5 the chat model is assessed otherwise.
    assert alone != together["corvid-atlas-5-chat"]
    stored = record(db_url)
    assert stored.latest["corvid-atlas-5-chat"].level == stored.latest["corvid-atlas-5"].level
    assert "determination" not in (
        stored.evidence["corvid-atlas-5-chat"]["model"]["last_comprehensive_assessment"])
    chat_hash = stored.latest["corvid-atlas-5-chat"].input_hash

    # What the record carries over hashes the same as what the portfolio carries over.
    both = batch(db_url, base, chat)
    assert both.exit_code == 0, both.stderr
    assert (parse_summary(both.stdout).assessed, parse_summary(both.stdout).unchanged) == (0, 2)

    # atlas-5's evidence changes its ASL: CBRN-3 is now ruled out by a full-elicitation
    # evaluation well below its warning score, and the red team agrees.
    changed_doc = json.loads(json.dumps(base_doc))
    changed_doc["evaluations"][0]["score"] = 0.3
    changed_doc["findings"][0]["verdict"] = "ruled_out"
    changed = write_json(tmp_path / "atlas-5.json", changed_doc)
    new_lines = assess_lines(changed, chat)
    new_together = by_model(new_lines)
    old_asl = together["corvid-atlas-5"]["asl"]
    new_asl = new_together["corvid-atlas-5"]["asl"]
    assert new_asl != old_asl

    rerun_base = batch(db_url, changed)
    assert rerun_base.exit_code == 0, rerun_base.stderr
    printed = parse_summary(rerun_base.stdout)
    assert printed.assessed == 1
    assert [(m, old[0], new[0]) for m, old, new in printed.changed] == [
        ("corvid-atlas-5", old_asl, new_asl)]

    rerun_chat = batch(db_url, chat, "--output", tmp_path / "chat2.jsonl")
    assert rerun_chat.exit_code == 0, rerun_chat.stderr
    printed = parse_summary(rerun_chat.stdout)
    assert (printed.assessed, printed.unchanged) == (1, 0)  # not skipped: its input changed
    after = record(db_url)
    assert after.latest["corvid-atlas-5-chat"].input_hash != chat_hash
    assert after.latest["corvid-atlas-5-chat"].level == new_asl
    assert (tmp_path / "chat2.jsonl").read_bytes() == as_file(
        [line_for(new_lines, "corvid-atlas-5-chat")])


def test_a_dependent_assessed_before_its_reference_is_reassessed_once_it_is_stored(
        db_url: str, tmp_path: Path) -> None:
    base = write_json(tmp_path / "atlas-5.json", lineage_document("corvid-atlas-5"))
    chat = write_json(tmp_path / "atlas-5-chat.json", lineage_document("corvid-atlas-5-chat"))
    assert batch(db_url, chat).exit_code == 0
    alone = record(db_url).latest["corvid-atlas-5-chat"]
    assert batch(db_url, base).exit_code == 0
    again = batch(db_url, chat, "--output", tmp_path / "chat.jsonl")
    assert again.exit_code == 0, again.stderr
    assert parse_summary(again.stdout).assessed == 1
    assert record(db_url).latest["corvid-atlas-5-chat"].input_hash != alone.input_hash
    together = line_for(assess_lines(base, chat), "corvid-atlas-5-chat")
    assert (tmp_path / "chat.jsonl").read_bytes() == as_file([together])


# -- 3. a corrupt document in the middle of a portfolio -------------------------------


def _jsonl_with_bad_field(tmp_path: Path) -> tuple[Path, str, set[str]]:
    docs = example_documents()[:5]
    bad = docs[2]
    bad["evaluations"][0]["score"] = "high"
    path = tmp_path / "portfolio.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    message = f"{path}: line 3: evaluations[0].score: expected a number, got 'high'"
    return path, message, {d["model"]["id"] for d in docs if d is not bad}


def _jsonl_with_broken_line(tmp_path: Path) -> tuple[Path, str, set[str]]:
    docs = example_documents()[:4]
    lines = [json.dumps(d) for d in docs]
    broken = '{"model": {"id": "half-written"}, "evaluations": ['  # cut off mid-write
    lines.insert(2, broken)
    path = tmp_path / "portfolio.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = f"{path}: line 3: invalid JSON at column {len(broken) + 1}: Expecting value"
    return path, message, {d["model"]["id"] for d in docs}


def _yaml_with_bad_score(tmp_path: Path) -> tuple[Path, str, set[str]]:
    text = LINEAGE.read_text(encoding="utf-8")
    assert text.count("score: 0.43") == 1  # corvid-atlas-5-code, models[2]
    path = tmp_path / "lineage.yaml"
    path.write_text(text.replace("score: 0.43", "score: n/a"), encoding="utf-8")
    message = f"{path}: models[2].evaluations[0].score: expected a number, got 'n/a'"
    return path, message, {"corvid-atlas-5", "corvid-atlas-5-chat", "corvid-atlas-5.1",
                           "corvid-atlas-6-pilot"}


def _yaml_with_bad_lineage_root(tmp_path: Path) -> tuple[Path, str, set[str]]:
    """corvid-atlas-5, which the others reference, is the bad one: they are not assessed
    either (evidence-format.md, "Errors are part of the contract"), each named on its own
    line with the model it references and why that one could not be assessed; nothing
    is stored, as `asl assess` assesses nothing."""
    text = LINEAGE.read_text(encoding="utf-8")
    assert text.count("score: 0.66") == 1  # corvid-atlas-5, models[0]
    path = tmp_path / "lineage.yaml"
    path.write_text(text.replace("score: 0.66", "score: '0.66 (rounded)'"), encoding="utf-8")
    problem = "models[0].evaluations[0].score: expected a number, got '0.66 (rounded)'"
    message = "\n".join([f"{path}: {problem}", *(
        f"{path}: models[{i}].model.last_comprehensive_assessment.model: references "
        f"'corvid-atlas-5', which could not be assessed ({problem})" for i in range(1, 5))])
    return path, message, set()


@pytest.mark.parametrize("make", [_jsonl_with_bad_field, _jsonl_with_broken_line,
                                  _yaml_with_bad_score, _yaml_with_bad_lineage_root],
                         ids=["jsonl-field", "jsonl-syntax", "yaml-score", "yaml-root"])
def test_a_corrupt_document_is_rejected_and_the_rest_stored(db_url: str, tmp_path: Path,
                                                            make: Any) -> None:
    path, message, good = make(tmp_path)
    rejected = len(message.splitlines())
    result = batch(db_url, path, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    printed = parse_summary(result.stdout)
    assert (printed.assessed, printed.rejected) == (len(good), rejected)
    stored = record(db_url)
    assert set(stored.latest) == good
    assert stored.runs == [([str(path)], len(good), 0, rejected, True)]
    expected = assess_lines_allowing_rejects(path)
    assert (tmp_path / "out.jsonl").read_bytes() == as_file(expected)


def assess_lines_allowing_rejects(path: Path) -> list[str]:
    """`asl assess PATH --format jsonl` of a portfolio with a rejected document (exit 2)."""
    result = run("assess", path, "--format", "jsonl")
    assert result.exit_code == 2
    return sorted(result.stdout.splitlines(), key=lambda line: json.loads(line)["model"])


# -- 4. the closing summary -----------------------------------------------------------


def test_summary_counts_need_action_and_changes_match_the_record(
        db_url: str, examples: tuple[Path, Path]) -> None:
    directory, lineage = examples
    first = batch(db_url, directory, lineage)
    assert first.exit_code == 0, first.stderr
    printed = parse_summary(first.stdout)
    before_record = record(db_url)
    before = before_record.latest
    assert len(before) == 15
    assert printed.by_asl == dict(Counter(s.level for s in before.values()))
    assert printed.by_decision == dict(Counter(s.decision for s in before.values()))
    assert list(printed.by_decision) == [d for d in DECISION_ORDER if d in printed.by_decision]
    need = sorted((s for s in before.values() if s.decision != "proceed"),
                  key=lambda s: (DECISION_ORDER.index(s.decision), s.model_id))
    assert need, "the examples hold models that need action"
    assert printed.need_action == [(s.model_id, s.level, s.decision, len(s.actions))
                                   for s in need]
    assert printed.changed == []

    # larkspur-kite-4 pauses for two ASL-3 Security elements; its lab reports them done.
    gap = directory / "security-gap-pause.yaml"
    text = gap.read_text(encoding="utf-8")
    for element in ("asl3-security.resourcing", "asl3-security.audits"):
        text, n = re.subn(rf"(- id: {re.escape(element)}\n\s+status: )\w+", r"\1implemented",
                          text)
        assert n == 1
    gap.write_text(text, encoding="utf-8")
    new = by_model(assess_lines(gap))["larkspur-kite-4"]
    old = before["larkspur-kite-4"]
    assert old.decision == "pause" and new["decision"] != old.decision

    second = batch(db_url, directory, lineage)
    assert second.exit_code == 0, second.stderr
    printed = parse_summary(second.stdout)
    after_record = record(db_url)
    after = after_record.latest
    assert (printed.assessed, printed.unchanged) == (1, 14)
    assert printed.changed == changes(before_record, after_record) == [
        ("larkspur-kite-4", (old.level, old.decision), (new["asl"], new["decision"]))]
    # Under it, every other contract key that changed: the safeguards now in place.
    assert printed.details["larkspur-kite-4"] == other_keys(
        before_record.results["larkspur-kite-4"], new)
    assert any(d.startswith("missing_safeguards ") for d in printed.details["larkspur-kite-4"])
    line = next(text for text in second.stdout.splitlines()
                if text.startswith("    larkspur-kite-4 ") and "->" in text)
    assert re.fullmatch(rf"    larkspur-kite-4  {old.level} pause +-> {new['asl']} "
                        rf"{new['decision']}", line)
    assert printed.by_decision == dict(Counter(s.decision for s in after.values()))
    assert ("larkspur-kite-4" in {m for m, *_ in printed.need_action}) == (
        new["decision"] != "proceed")


# -- 5. re-assessment after a rule change ---------------------------------------------

# A rules-only overlay (no kinds, facts or catalogue of its own): one new rule that needs
# a `finding`, so only models whose evidence has findings could be affected by it.
OVERLAY_PACK = """\
name: {name}
title: A lab's stricter reading of red-team findings
"""
OVERLAY_RULE = """\
- id: {name}.finding-requires-asl4-security
  title: A {capability} finding of {verdict} requires the ASL-4 Security Standard
  cite: RSP v2.1 §2
  because: "finding {{f.id}} judged {{f.capability}} {{f.verdict}}"
  when:
    - match: finding
      as: f
      where: {{capability: {capability}, verdict: {verdict}}}
  then:
    requirement: {{standard: security, level: ASL-4, rank: 4}}
"""


def write_overlay(root: Path, name: str, capability: str, verdict: str) -> Path:
    (root / "rules").mkdir(parents=True)
    (root / "pack.yaml").write_text(OVERLAY_PACK.format(name=name), encoding="utf-8")
    (root / "rules" / "10-findings.yaml").write_text(
        OVERLAY_RULE.format(name=name, capability=capability, verdict=verdict),
        encoding="utf-8")
    return root


def without_pack(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "pack"}


def test_reassess_with_the_acme_overlay_reruns_every_model_once(db_url: str,
                                                                tmp_path: Path) -> None:
    assert batch(db_url, EXAMPLES, LINEAGE).exit_code == 0
    before = record(db_url)
    expected = assess_lines(EXAMPLES, LINEAGE, packs=[ACME])

    result = batch(db_url, "--reassess", "--pack", ACME, "--output", tmp_path / "acme.jsonl")
    assert result.exit_code == 0, result.stderr
    printed = parse_summary(result.stdout)
    after = record(db_url)
    # The overlay adds an element to the ASL-3 Security Standard: every stored model's
    # result could depend on the catalogue, so every one is re-run.
    assert (printed.kind, printed.pack, printed.assessed, printed.unchanged) == (
        "re-assessment", "rsp-2.1+acme-lab", 15, 0)
    assert all(after.latest[m].id != before.latest[m].id for m in before.latest)
    assert {s.pack_name for s in after.latest.values()} == {"rsp-2.1+acme-lab"}
    assert (tmp_path / "acme.jsonl").read_bytes() == as_file(expected)
    assert [stored_line(after.results[m]) for m in sorted(after.results)] == expected
    listed = changes(before, after)
    assert printed.changed == listed
    assert ("larkspur-heron-2", ("ASL-2", "proceed"), ("ASL-3", "pause")) in listed

    again = batch(db_url, "--reassess", "--pack", ACME)
    assert again.exit_code == 0, again.stderr
    printed = parse_summary(again.stdout)
    assert (printed.models, printed.assessed, printed.unchanged, printed.changed) == (
        0, 0, 0, [])
    assert record(db_url).assessments == after.assessments


@pytest.mark.parametrize(("capability", "verdict", "carried"), [
    ("CBRN-3", "cannot_rule_out", CORVID_DESCENDANTS),  # corvid-atlas-5 becomes ASL-4
    ("CBRN-4", "crossed", set()),  # needs findings, fires for none of them
], ids=["changes-a-lineage-root", "changes-nothing"])
def test_reassess_reruns_exactly_the_models_a_changed_rule_can_reach(
        db_url: str, tmp_path: Path, capability: str, verdict: str,
        carried: set[str]) -> None:
    overlay = write_overlay(tmp_path / "overlay", "findings", capability, verdict)
    assert batch(db_url, EXAMPLES, LINEAGE).exit_code == 0
    before = record(db_url)
    with_findings = {m for m, body in before.evidence.items() if body.get("findings")}
    assert "corvid-atlas-5" in with_findings and not with_findings & CORVID_DESCENDANTS
    assert 0 < len(with_findings) < 15
    expected = by_model(assess_lines(EXAMPLES, LINEAGE, packs=[overlay]))

    result = batch(db_url, "--reassess", "--pack", overlay)
    assert result.exit_code == 0, result.stderr
    printed = parse_summary(result.stdout)
    after = record(db_url)
    rerun = {m for m in after.latest if after.latest[m].id != before.latest[m].id}
    # The models with findings, and those carrying over an ASL that changed with them.
    assert rerun == with_findings | carried
    assert printed.assessed == len(rerun)
    # atlas-5's descendants are looked at; those whose carried-over ASL did not change
    # are skipped as unchanged.
    assert printed.unchanged == len(CORVID_DESCENDANTS - carried)
    asl_changed = {m for m in rerun if after.latest[m].level != before.latest[m].level}
    assert ("corvid-atlas-5" in asl_changed) == bool(carried)
    for model in rerun:
        assert after.latest[model].pack_name == "rsp-2.1+findings"
        assert after.results[model] == expected[model]
    # The others keep their old assessment, and the new pack would not have changed it.
    for model in set(after.latest) - rerun:
        assert after.latest[model] == before.latest[model]
        assert after.latest[model].pack_name == "rsp-2.1"
        assert without_pack(after.results[model]) == without_pack(expected[model])
    assert printed.changed == changes(before, after)
    assert {m for m, *_ in printed.changed} == {
        m for m in rerun
        if contract_values(before.results[m]) != contract_values(expected[m])}
    if carried:
        assert printed.changed, "the stricter rule changes some results"

    again = batch(db_url, "--reassess", "--pack", overlay)
    assert again.exit_code == 0, again.stderr
    printed = parse_summary(again.stdout)
    assert (printed.assessed, printed.changed) == (0, [])
    assert record(db_url).assessments == after.assessments

    # Back to the built-in pack: the overlay's rule is gone, so what it fired for (and
    # what carries over from that) is re-run, and every result is the built-in one again.
    back = batch(db_url, "--reassess")
    assert back.exit_code == 0, back.stderr
    printed = parse_summary(back.stdout)
    restored = record(db_url)
    builtin = by_model(assess_lines(EXAMPLES, LINEAGE))
    assert {m: without_pack(r) for m, r in restored.results.items()} == {
        m: without_pack(r) for m, r in builtin.items()}
    assert printed.changed == changes(after, restored) == [
        (m, new, old) for m, old, new in changes(before, after)]
    assert (printed.assessed > 0) == bool(carried)


# -- 6. parallel executors store the same results -------------------------------------

SYNTH_MODELS = 300


@dataclass(frozen=True)
class Synthetic:
    portfolio: Path
    output: Path  # --output of --jobs 1
    rows: dict[str, tuple[Any, ...]]  # what --jobs 1 stored, per model


def stored_rows(url: str) -> dict[str, tuple[Any, ...]]:
    """Per model, every stored column that does not depend on when or in which order it
    was stored."""
    return {m: (s.pack_version, s.input_hash, s.evidence_hash, s.level,
                s.required, s.scalars, s.decision, s.missing_safeguards, s.actions)
            for m, s in record(url).latest.items()}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthetic]:
    """300 synthetic models with lineage, assessed in this process (`--jobs 1`)."""
    root = tmp_path_factory.mktemp("synthetic")
    models = generate_models(SYNTH_MODELS, seed=7, lineage=True)
    lineage = nx.DiGraph()
    for doc in models:
        lineage.add_node(doc["model"]["id"])
        ref = doc["model"].get("last_comprehensive_assessment", {}).get("model")
        if ref in lineage:
            lineage.add_edge(ref, doc["model"]["id"])
    generations = [len(g) for g in nx.topological_generations(lineage)]
    # The local pool starts only for a generation of more than one chunk of jobs.
    assert len(generations) > 2 and max(generations) > CHUNK, generations
    portfolio = root / "portfolio.jsonl"
    write_portfolio(portfolio, models)
    url = f"sqlite:///{root / 'jobs1.db'}"
    result = batch(url, portfolio, "--jobs", "1", "--output", root / "jobs1.jsonl")
    assert result.exit_code == 0, result.stderr
    printed = parse_summary(result.stdout)
    assert printed.assessed == SYNTH_MODELS
    # A summary of more models needing action than it lists: the first, then a count.
    stored = record(url).latest
    need = sorted((s for s in stored.values() if s.decision != "proceed"),
                  key=lambda s: (DECISION_ORDER.index(s.decision), s.model_id))
    assert printed.need_total == len(need) > SHOW_AT_MOST
    assert printed.need_action == [(s.model_id, s.level, s.decision, len(s.actions))
                                   for s in need[:SHOW_AT_MOST]]
    assert printed.by_asl == dict(Counter(s.level for s in stored.values()))
    yield Synthetic(portfolio, root / "jobs1.jsonl", stored_rows(url))


def test_local_pool_stores_what_one_process_stores(db_url: str, tmp_path: Path,
                                                   synthetic: Synthetic) -> None:
    result = batch(db_url, synthetic.portfolio, "--jobs", "2",
                   "--output", tmp_path / "jobs2.jsonl")
    assert result.exit_code == 0, result.stderr
    assert parse_summary(result.stdout).assessed == SYNTH_MODELS
    assert (tmp_path / "jobs2.jsonl").read_bytes() == synthetic.output.read_bytes()
    assert stored_rows(db_url) == synthetic.rows


def test_dask_stores_what_one_process_stores(tmp_path: Path, synthetic: Synthetic) -> None:
    url = f"sqlite:///{tmp_path / 'dask.db'}"
    result = batch(url, synthetic.portfolio, "--executor", "dask", "--jobs", "2",
                   "--output", tmp_path / "dask.jsonl")
    assert result.exit_code == 0, result.stderr
    assert parse_summary(result.stdout).assessed == SYNTH_MODELS
    assert (tmp_path / "dask.jsonl").read_bytes() == synthetic.output.read_bytes()
    assert stored_rows(url) == synthetic.rows


# -- 7. asl db upgrade ----------------------------------------------------------------


def test_db_upgrade_prints_the_revision_and_is_idempotent(db_url: str) -> None:
    engine = connect(db_url, migrate=False)
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()
    head = head_revision()
    assert head
    first = run("db", "upgrade", "--db", db_url)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.endswith(f": schema at revision {head} (newest {head})\n")
    assert first.stdout.count("\n") == 1
    second = run("db", "upgrade", "--db", db_url)
    assert second.exit_code == 0, second.stderr
    assert second.stdout == first.stdout
    engine = connect(db_url, migrate=False)
    try:
        assert current_revision(engine) == head
    finally:
        engine.dispose()
    stored = record(db_url)
    assert (stored.assessments, stored.batches, stored.latest) == (0, 0, {})
