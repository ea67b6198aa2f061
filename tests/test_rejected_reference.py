"""Issue 16, through the real command line: a portfolio model whose
`last_comprehensive_assessment` or `predecessor` names a model of the same portfolio that
was rejected is not assessed either (evidence-format.md, "Errors are part of the
contract"): one line naming the model it references and why that one could not be
assessed, transitively; not stored by `asl batch`; the rest still assessed; exit 2. The
same in `asl assess`, `asl batch` and `asl what-if`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from helpers import EXAMPLES

from cli.main import main
from engine.yamlsafe import load_yaml
from store.db import connect
from store.record import Store

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
NOT_ASSESSED = "which could not be assessed"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def portfolio() -> dict[str, Any]:
    """examples/portfolio/lineage.yaml as plain data: corvid-atlas-5 (models[0]), -chat
    (its successor, carrying it over), -code and 5.1 (successors of -chat, carrying over
    corvid-atlas-5), 6-pilot (successor of corvid-atlas-5)."""
    return json.loads(json.dumps(load_yaml(LINEAGE.read_text(encoding="utf-8")), default=str))


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def with_bad_chat(tmp_path: Path) -> tuple[Path, str]:
    """The lineage with corvid-atlas-5-chat rejected (an unknown field), and its error."""
    data = portfolio()
    data["models"][1]["model"]["bogus"] = 1
    path = write(tmp_path / "lineage.json", data)
    return path, ("models[1].model.bogus: unknown field 'bogus'; expected one of developer, "
                  "effective_compute_flop, id, last_comprehensive_assessment, name, "
                  "predecessor")


def stopped_lines(path: Path, problem: str) -> list[str]:
    """What stops -code and 5.1: the predecessor they name, rejected."""
    return [f"{path}: models[{i}].model.predecessor: references 'corvid-atlas-5-chat', "
            f"{NOT_ASSESSED} ({problem})" for i in (2, 3)]


def test_assess_skips_the_models_that_follow_a_rejected_one(tmp_path: Path) -> None:
    path, problem = with_bad_chat(tmp_path)
    result = run("assess", EXAMPLES, path, "--format", "json")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{path}: {problem}", *stopped_lines(path, problem)]
    assessed = [doc["model"] for doc in json.loads(result.stdout)]
    assert "corvid-atlas-5" in assessed and "corvid-atlas-6-pilot" in assessed
    assert len(assessed) == 12  # the ten examples, and the two the rejection does not touch
    alone = json.loads(run("assess", LINEAGE, "--format", "json").stdout)
    pilot = next(doc for doc in alone if doc["model"] == "corvid-atlas-6-pilot")
    assert pilot in json.loads(result.stdout)  # unchanged by the rejection elsewhere


def test_a_rejection_reaches_every_model_downstream(tmp_path: Path) -> None:
    data = portfolio()
    data["models"][0]["evaluations"][0]["score"] = "high"  # corvid-atlas-5: rejected
    path = write(tmp_path / "lineage.json", data)
    result = run("assess", path, "--format", "jsonl")
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    problem = "models[0].evaluations[0].score: expected a number, got 'high'"
    assert lines == [f"{path}: {problem}"] + [
        f"{path}: models[{i}].model.last_comprehensive_assessment.model: references "
        f"'corvid-atlas-5', {NOT_ASSESSED} ({problem})" for i in range(1, 5)]


def test_json_lines_name_the_line_and_the_other_file(tmp_path: Path) -> None:
    models = portfolio()["models"]
    root = tmp_path / "a-root.jsonl"
    root.write_text(json.dumps({**models[0], "extra": 1}) + "\n", encoding="utf-8")
    rest = tmp_path / "b-rest.jsonl"
    rest.write_text("".join(json.dumps(m) + "\n" for m in models[1:]), encoding="utf-8")
    result = run("assess", root, rest)
    assert result.exit_code == 2
    first = (f"{root}: line 1: extra: unknown field 'extra'; expected one of deployment, "
             "evaluations, findings, model, safeguards")
    assert result.stderr.splitlines() == [first] + [
        f"{rest}: line {i}: model.last_comprehensive_assessment.model: references "
        f"'corvid-atlas-5', {NOT_ASSESSED} ({first})" for i in range(1, 5)]


def test_batch_stores_neither_the_rejected_model_nor_those_that_follow_it(
        db_url: str, tmp_path: Path) -> None:
    path, problem = with_bad_chat(tmp_path)
    first = run("batch", path, "--db", db_url, "--no-progress")
    assert first.exit_code == 2
    assert first.stderr.splitlines() == [f"{path}: {problem}", *stopped_lines(path, problem)]
    assert "  assessed 2, unchanged 0 (skipped), rejected 3" in first.stdout.splitlines()
    assert _stored(db_url) == {"corvid-atlas-5", "corvid-atlas-6-pilot"}
    # With -chat stored by an earlier batch, a portfolio where it is rejected still stops
    # its successors: they do not fall back on the record.
    assert run("batch", LINEAGE, "--db", db_url, "--no-progress").exit_code == 0
    stored = _stored(db_url)
    again = run("batch", path, "--db", db_url, "--no-progress", "--force")
    assert again.exit_code == 2
    assert again.stderr.splitlines() == [f"{path}: {problem}", *stopped_lines(path, problem)]
    assert "  assessed 2, unchanged 0 (skipped), rejected 3" in again.stdout.splitlines()
    assert _stored(db_url) == stored


def _stored(url: str) -> set[str]:
    engine = connect(url)
    try:
        return {s.model_id for s in Store(engine).all_latest()}
    finally:
        engine.dispose()


def test_what_if_reports_the_skipped_models_and_changes_the_rest(tmp_path: Path) -> None:
    path, problem = with_bad_chat(tmp_path)
    result = run("what-if", path, "--model", "corvid-atlas-5", "--set",
                 "evaluations[atlas5-bio-acquisition-2026-01].score=0.3", "--format", "json")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"{path}: {problem}", *stopped_lines(path, problem)]
    assert json.loads(result.stdout)["affected"] == ["corvid-atlas-5"]


def test_what_if_on_a_skipped_model_prints_nothing_but_why(tmp_path: Path) -> None:
    path, problem = with_bad_chat(tmp_path)
    result = run("what-if", path, "--model", "corvid-atlas-5-code", "--set",
                 "deployment.channels=[api]")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"{path}: {problem}", *stopped_lines(path, problem)]


def test_what_if_an_edit_makes_a_model_follow_a_rejected_one(tmp_path: Path) -> None:
    path, problem = with_bad_chat(tmp_path)
    result = run("what-if", path, "--model", "corvid-atlas-6-pilot", "--set",
                 "model.predecessor=corvid-atlas-5-chat")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: {problem}", *stopped_lines(path, problem),
        f"{path}: models[4].model.predecessor: references 'corvid-atlas-5-chat', "
        f"{NOT_ASSESSED} ({problem})"]
