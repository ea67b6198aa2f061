"""Portfolio impact (`knowledge_graph.impact`, `asl impact`): which conclusions of which
models rest on an evidence item, across carried-over determinations, and where a rule
fired."""

from __future__ import annotations

import doctest
import json
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import DATA, EXAMPLES, assess_paths

import knowledge_graph.impact
from cli.main import main
from engine.assess import evaluator_for
from knowledge_graph.impact import (
    CARRIED_OVER,
    UnknownEvidence,
    portfolio_graph,
    rests_on_evidence,
    rule_reads,
    rule_uses,
    split,
)
from knowledge_graph.report import provenance

LINEAGE = EXAMPLES / "portfolio" / "lineage.yaml"
BASE_EVAL = "atlas5-bio-acquisition-2026-01"


def run(*args: str):
    return CliRunner().invoke(main, ["impact", *args], catch_exceptions=False)


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def lineage_graph():
    reads = rule_reads(evaluator_for().pack.rules)
    return portfolio_graph({a.model: provenance(a) for a in assess_paths(LINEAGE)}, reads)


def test_doctests_run() -> None:
    assert doctest.testmod(knowledge_graph.impact).failed == 0


def test_portfolio_graph_prefixes_every_node_with_its_model() -> None:
    assessments = assess_paths(LINEAGE)
    graphs = {a.model: provenance(a) for a in assessments}
    G = portfolio_graph(graphs)
    assert G.number_of_nodes() == sum(g.number_of_nodes() for g in graphs.values())
    for node, data in G.nodes(data=True):
        assert split(node) == (data["model"], data["local"])
        assert data["local"] in graphs[data["model"]]
    crossing = [(a, b) for a, b, role in G.edges(data="role") if role == CARRIED_OVER]
    assert crossing and all(split(a)[0] != split(b)[0] for a, b in crossing)


def test_rule_reads_of_the_carry_over_rule() -> None:
    reads = rule_reads(evaluator_for().pack.rules)
    assert {"determination", "determination_rank"} <= reads["requirements.carry-over.security"]["r"]
    assert "months_since" in reads["assessment.trigger.months"]["r"]


def test_base_evidence_reaches_the_models_that_carry_its_determination_over() -> None:
    found = rests_on_evidence(lineage_graph(), BASE_EVAL)
    models = {model for model, _ in found}
    # 5.1 and the 6 pilot need a new comprehensive assessment: nothing carries over.
    assert models == {"corvid-atlas-5", "corvid-atlas-5-chat", "corvid-atlas-5-code"}
    assert ("corvid-atlas-5", "signal(capability=CBRN-3,severity=2,value=cannot_rule_out)") \
        in found
    assert ("corvid-atlas-5-chat", "requirement(level=ASL-3,rank=3,standard=security)") in found
    assert found == sorted(found)


def test_compute_taken_from_the_base_document_is_evidence_too() -> None:
    found = rests_on_evidence(lineage_graph(), "model:corvid-atlas-5")
    assert {model for model, _ in found} == {"corvid-atlas-6-pilot"}  # 4.3x its compute
    assert ("corvid-atlas-6-pilot", "assessment_trigger(reason=effective_compute)") in found


def test_unknown_evidence_suggests_a_close_id() -> None:
    with pytest.raises(UnknownEvidence) as caught:
        rests_on_evidence(lineage_graph(), "atlas5-bio-acquisition-2026-02")
    assert caught.value.suggestions[0] == BASE_EVAL


def test_rule_uses() -> None:
    uses = rule_uses(lineage_graph(), "requirements.carry-over.security")
    assert [model for model, _ in uses] == ["corvid-atlas-5-chat", "corvid-atlas-5-code"]
    assert rule_uses(lineage_graph(), "decision.pause.security-missing") == []


def test_cli_evidence_lists_models_and_conclusions_with_kind_and_values() -> None:
    report = run_json(str(LINEAGE), "--evidence", BASE_EVAL)
    assert report["models"] == ["corvid-atlas-5", "corvid-atlas-5-chat", "corvid-atlas-5-code"]
    assert report["stated_in"] == [{"model": "corvid-atlas-5",
                                    "fact": f"evidence:{BASE_EVAL}",
                                    "entry": "models[0].evaluations[0]"}]
    status = next(c for c in report["conclusions"] if c["model"] == "corvid-atlas-5"
                  and c["id"] == "status(capability=CBRN-3,value=cannot_rule_out)")
    assert status["kind"] == "status"
    assert status["value"] == {"capability": "CBRN-3", "value": "cannot_rule_out"}
    assert status["rule"] == "status.from-own-evidence"
    text = run(str(LINEAGE), "--evidence", BASE_EVAL).stdout
    assert text.startswith(f"evidence {BASE_EVAL}: stated in corvid-atlas-5 "
                           "(models[0].evaluations[0])\n")
    assert "\ncorvid-atlas-5-chat (" in text and "corvid-atlas-5.1" not in text


def test_cli_rule_lists_the_tuned_model() -> None:
    path = str(DATA / "lineage-base-and-tune.yaml")
    report = run_json(path, "--rule", "requirements.carry-over.security")
    assert report["models"] == ["marlin-base-instruct"]
    (use,) = report["uses"]
    assert use["conclusions"][0]["value"] == {"level": "ASL-3", "rank": 3,
                                              "standard": "security"}
    assert "marlin-base::asl(level=ASL-3,rank=3)" in use["matched"]  # carried over
    assert report["cite"] == "RSP v2.1 §3.1"
    text = run(path, "--rule", "requirements.carry-over.security").stdout
    assert "fired 1 time(s) in 1 model(s)" in text
    assert "\nmarlin-base-instruct: no comprehensive assessment is required" in text
    result = run(path, "--rule", "decision.pause.security-missing")
    assert result.exit_code == 0 and "did not fire for any model" in result.stdout


def test_cli_impact_agrees_with_what_if() -> None:
    path = str(DATA / "lineage-base-and-tune.yaml")
    impact = run_json(path, "--evidence", "mb-bio-workflow")
    result = CliRunner().invoke(main, ["what-if", path, "--model", "marlin-base", "--set",
                                       "evaluations[mb-bio-workflow].score=0.3", "--format",
                                       "json"])
    what_if = json.loads(result.stdout)
    assert set(what_if["affected"]) <= set(impact["models"])
    rests = {(c["model"], c["id"]) for c in impact["conclusions"]}
    removed = {(c["model"], c["id"]) for c in what_if["conclusion_changes"]
               if c["change"] == "removed"}
    assert removed <= rests  # whatever the edit took away rested on the edited evidence


@pytest.mark.parametrize(("args", "message"), [
    (["--evidence", "mb-bio-workflw"], "asl: no evidence item 'mb-bio-workflw' in the "
                                       "portfolio (did you mean 'mb-bio-workflow'?)"),
    (["--rule", "requirements.carry-over.securty"],
     "asl: unknown rule 'requirements.carry-over.securty' (did you mean "
     "'requirements.carry-over.security'?)"),
    ([], "give exactly one of --evidence ID or --rule RULE_ID"),
    (["--evidence", "mb-bio-workflow", "--rule", "requirements.asl"], "give exactly one of"),
])
def test_cli_unknown_ids_exit_2(args: list[str], message: str) -> None:
    result = run(str(DATA / "lineage-base-and-tune.yaml"), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
