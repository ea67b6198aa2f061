"""The record read back: `asl history`, `asl diff`, `asl list` and `asl why MODEL`, on
SQLite and PostgreSQL (the `db_url` fixture), through the real command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner, Result
from helpers import EXAMPLES

from cli.main import main
from knowledge_graph.compare import compare, contract_values
from knowledge_graph.provenance import dump, load

KITE = EXAMPLES / "security-gap-pause.yaml"  # larkspur-kite-4: ASL-3, pause
LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def lower_kite(tmp_path: Path) -> Path:
    """larkspur-kite-4 with its one concerning CBRN-3 score lowered below the warning."""
    text = KITE.read_text()
    assert "    score: 0.66\n" in text
    changed = tmp_path / "kite.yaml"
    changed.write_text(text.replace("    score: 0.66\n", "    score: 0.50\n"))
    return changed


@pytest.fixture
def recorded(db_url: str, tmp_path: Path) -> str:
    """A record holding the examples, then a second assessment of larkspur-kite-4 after
    its evidence changed (ASL-3 pause -> ASL-2 proceed)."""
    assert run("batch", EXAMPLES, LINEAGE, "--db", db_url, "--no-progress").exit_code == 0
    assert run("batch", lower_kite(tmp_path), "--db", db_url, "--no-progress").exit_code == 0
    return db_url


def test_history_lists_every_assessment_oldest_first(recorded: str) -> None:
    result = run("history", "larkspur-kite-4", "--db", recorded, "--format", "json")
    rows = json.loads(result.output)
    assert [(r["asl"], r["decision"]) for r in rows] == [("ASL-3", "pause"),
                                                         ("ASL-2", "proceed")]
    assert rows[0]["assessment"] < rows[1]["assessment"]
    assert rows[0]["pack"]["version"].startswith("sha256:")
    table = run("history", "larkspur-kite-4", "--db", recorded).output.splitlines()
    assert table[0].split()[:3] == ["id", "assessed", "(UTC)"]
    assert "ASL-3" in table[1] and "pause" in table[1] and "proceed" in table[2]


def test_history_of_an_unknown_model_is_a_clear_error(recorded: str) -> None:
    result = CliRunner().invoke(main, ["history", "no-such-model", "--db", recorded])
    assert result.exit_code == 2
    assert "no stored assessment of a model 'no-such-model'" in result.output


def test_diff_names_each_changed_key_and_the_evidence_behind_it(recorded: str) -> None:
    change = json.loads(run("diff", "larkspur-kite-4", "--db", recorded,
                            "--format", "json").output)
    keys = {k["key"]: (k["old"], k["new"]) for k in change["keys"]}
    assert keys["asl"] == ("ASL-3", "ASL-2")
    assert keys["decision"] == ("pause", "proceed")
    assert keys["thresholds.CBRN-3"] == ("cannot_rule_out", "ruled_out")
    evidence = "evidence:kite4-bio-acquisition-2026-09"
    asl = next(k for k in change["keys"] if k["key"] == "asl")
    assert asl["because"][0]["evidence_changed"] == [evidence]
    assert set(change["evidence_changed"]) == {evidence}
    assert change["evidence_changed"][evidence]["old"]["score"] == 0.66
    assert change["evidence_changed"][evidence]["new"]["score"] == 0.5
    assert "decision(value=pause)" in change["conclusions_removed"]
    assert "decision(value=proceed)" in change["conclusions_added"]
    text = run("diff", "larkspur-kite-4", "--db", recorded).output
    assert "  asl: ASL-3 -> ASL-2\n" in text
    assert f"      evidence {evidence}: score 0.66 -> 0.5\n" in text


def test_diff_takes_two_ids_and_refuses_others(recorded: str) -> None:
    rows = json.loads(run("history", "larkspur-kite-4", "--db", recorded,
                          "--format", "json").output)
    a, b = (str(r["assessment"]) for r in rows)
    backwards = json.loads(run("diff", "larkspur-kite-4", b, a, "--db", recorded,
                               "--format", "json").output)
    assert {k["key"]: k["new"] for k in backwards["keys"]}["asl"] == "ASL-3"
    bad = CliRunner().invoke(main, ["diff", "larkspur-kite-4", a, "999999", "--db", recorded])
    assert bad.exit_code == 2 and "no assessment 999999" in bad.output
    single = CliRunner().invoke(main, ["diff", "corvid-atlas-5", "--db", recorded])
    assert single.exit_code == 2 and "one stored assessment" in single.output


def test_list_filters_the_newest_assessment_of_each_model(recorded: str) -> None:
    everything = json.loads(run("list", "--db", recorded, "--format", "json").output)
    assert len(everything) == 15
    assert [r["model"] for r in everything] == sorted(r["model"] for r in everything)
    paused = json.loads(run("list", "--db", recorded, "--decision", "pause",
                            "--format", "json").output)
    # larkspur-kite-4 paused at first; its newest assessment proceeds.
    assert [r["model"] for r in paused] == ["oriel-meridian-3"]
    asl3 = run("list", "--db", recorded, "--asl", "ASL-3", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(asl3)))
    assert rows and {r["asl"] for r in rows} == {"ASL-3"}
    assert {r["model"] for r in rows} == {r["model"] for r in everything
                                          if r["asl"] == "ASL-3"}
    none = run("list", "--db", recorded, "--asl", "ASL-4", "--decision", "proceed")
    assert none.output == "no stored assessments match\n"


def test_why_from_the_record_matches_why_from_the_file(recorded: str) -> None:
    for selector in ("asl", "decision", "required.security", "threshold:CBRN-3"):
        stored = run("why", "corvid-atlas-5-chat", "--db", recorded, "--conclusion", selector,
                     "--format", "json")
        fresh = run("why", LINEAGE, "--model", "corvid-atlas-5-chat", "--conclusion",
                    selector, "--format", "json")
        assert stored.exit_code == 0
        assert stored.output == fresh.output


def test_why_explains_an_older_assessment_on_request(recorded: str, tmp_path: Path) -> None:
    rows = json.loads(run("history", "larkspur-kite-4", "--db", recorded,
                          "--format", "json").output)
    first = run("why", "larkspur-kite-4", "--db", recorded, "--assessment",
                str(rows[0]["assessment"]), "--conclusion", "decision")
    assert first.output == run("why", KITE, "--conclusion", "decision").output
    newest = run("why", "larkspur-kite-4", "--db", recorded, "--conclusion", "decision")
    assert newest.output == run("why", lower_kite(tmp_path), "--conclusion",
                                "decision").output


def test_why_for_neither_a_file_nor_a_stored_model(recorded: str) -> None:
    result = CliRunner().invoke(main, ["why", "nonexistent.yaml", "--db", recorded])
    assert result.exit_code == 2
    assert "no such file, and no stored assessment" in result.output


def test_graph_round_trips_through_its_stored_form() -> None:
    graph = nx.DiGraph()
    graph.add_node("evidence:e", node="evidence", kind="evaluation",
                   values={"score": 0.25, "capability": "CBRN-3"}, info={"source": "lab"})
    graph.add_node("firing:r:1", node="firing", rule="r", title="t", cite="RSP v2.1 §1")
    graph.add_edge("evidence:e", "firing:r:1", role="used", **{"as": "e"})
    again = load(dump(graph))
    assert nx.utils.graphs_equal(graph, again)


def test_compare_of_an_assessment_with_itself_is_empty() -> None:
    result = {"model": "m", "pack": {"name": "p", "version": "v"}, "asl": "ASL-2",
              "required": {"deployment": "ASL-2", "security": "ASL-2"},
              "comprehensive_assessment_required": False, "thresholds": {"CBRN-3": "ruled_out"},
              "checkpoints": {}, "ongoing_assessment": {}, "missing_safeguards": [],
              "decision": "proceed", "actions": []}
    graph = nx.DiGraph()
    change = compare(result, graph, result, graph)
    assert change["keys"] == [] and change["evidence_changed"] == {}
    assert list(contract_values(result))[:3] == ["asl", "required.deployment",
                                                 "required.security"]
